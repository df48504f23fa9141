"""The classify page's results table: wrapped text, blank missing values, failures explained."""

from cvplay.reports import topk_table
from cvplay.runtime import Prediction
from cvplay_ui.tables import FAILED_PREFIX, results_display_table, results_table_config

WINNER = [Prediction(label="tiger cat", index=282, score=0.9), Prediction(label="tabby", index=281, score=0.05)]


def test_one_result_column_holds_the_top_k_or_why_the_input_failed():
    table = topk_table(["a.jpg", "b.jpg"], [WINNER, None], [None, "b.jpg is broken."])
    shown = results_display_table(table)
    assert list(shown["result"]) == ["tiger cat (0.900); tabby (0.050)", FAILED_PREFIX + "b.jpg is broken."]
    assert list(shown["index"].astype("object").fillna("")) == [282, ""]  # integer, blank when failed
    assert list(table.columns) == list(shown.columns)[:-1]  # the CSV's table is untouched


def test_missing_values_are_blank_and_long_text_wraps_inside_the_default_width():
    short = results_display_table(topk_table(["a.jpg"], [WINNER], [None]))
    config = results_table_config(short)
    assert config["placeholder"] == ""  # Streamlit would draw a missing value as "None"
    assert config["row_height"] > 64  # Streamlit wraps cell text only in rows taller than 4rem
    assert config["column_order"] == ["input", "label", "score", "index", "result"]
    widths = [config["column_config"][name]["width"] for name in config["column_order"]]
    # The main column is about 820 px wide at a 1280-px window with the sidebar open.
    assert sum(widths) <= 820 and widths[-1] == max(widths)


def test_rows_grow_with_the_longest_result_up_to_six_lines():
    ten = [Prediction(label=f"a rather long class name {i}", index=i, score=0.1) for i in range(10)]
    short = results_table_config(results_display_table(topk_table(["a.jpg"], [WINNER], [None])))
    long = results_table_config(results_display_table(topk_table(["a.jpg"], [ten], [None])))
    assert 64 < short["row_height"] < long["row_height"] <= 6 * 20 + 14
