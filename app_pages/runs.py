"""Training runs side by side: the table of every run, comparisons, a CNN from scratch on the same
split, and each run's "Download everything" zip. Thin page: see cvplay_ui/runs.py and cvplay/runs.py."""

from cvplay_ui.runs import runs_page

runs_page()
