"""Errors shared by the command line and the modules it calls.

A leaf module: it imports nothing from cvplay, so ``cli.py``, ``evaluate.py`` and
``training/`` can all raise :class:`CommandError` without importing one another in a circle
(tests/test_import_graph.py checks that no module of the package does).
"""

from __future__ import annotations


class CommandError(Exception):
    """A problem the user can fix, reported by the CLI as one sentence and exit status 2."""
