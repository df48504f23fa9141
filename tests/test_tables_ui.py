"""The classify page's results table: wrapped text, blank missing values, error column on demand."""

from cvplay.reports import topk_table
from cvplay.runtime import Prediction
from cvplay_ui.tables import WRAPPING_ROW_HEIGHT, results_table_config

WINNER = [Prediction(label="tiger cat", index=282, score=0.9)]


def test_failed_rows_show_blank_cells_and_long_text_wraps():
    config = results_table_config(topk_table(["a.jpg", "b.jpg"], [WINNER, None], [None, "b.jpg is broken."]))
    assert config["placeholder"] == ""  # Streamlit would draw a missing value as "None"
    assert WRAPPING_ROW_HEIGHT > 64  # Streamlit wraps cell text only in rows taller than 4rem
    assert config["row_height"] == WRAPPING_ROW_HEIGHT
    assert config["column_order"][-2:] == ["top_k", "error"]
    assert config["column_config"]["top_k"]["width"] == "large"


def test_the_error_column_is_left_out_when_nothing_failed():
    config = results_table_config(topk_table(["a.jpg"], [WINNER], [None]))
    assert "error" not in config["column_order"] and "top_k" in config["column_order"]
