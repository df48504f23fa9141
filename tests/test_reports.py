"""Result tables of the classify page and the CLI: integers stay integers, failures stay blank."""

import csv
import io

import pandas as pd

from cvplay.reports import topk_table
from cvplay.runtime import Prediction


def predictions(*pairs):
    return [Prediction(label=label, index=index, score=score) for label, index, score in pairs]


def sample_table():
    return topk_table(
        ["cat.jpg", "broken.jpg", "dog.jpg"],
        [predictions(("tiger cat", 282, 0.91), ("tabby", 281, 0.05)), None, predictions(("kuvasz", 222, 0.5))],
        [None, "broken.jpg is not an image this app can read.", None],
    )


def test_csv_writes_the_class_index_as_an_integer_and_blanks_for_a_failed_row():
    rows = list(csv.DictReader(io.StringIO(sample_table().to_csv(index=False))))
    assert [row["index"] for row in rows] == ["282", "", "222"]
    assert [row["score"] for row in rows] == ["0.91", "", "0.5"]
    assert rows[1]["error"] == "broken.jpg is not an image this app can read." and rows[1]["label"] == ""
    assert "None" not in sample_table().to_csv(index=False) and "nan" not in sample_table().to_csv(index=False).lower()


def test_failed_rows_are_missing_values_not_none_and_columns_keep_their_types():
    table = sample_table()
    assert str(table["index"].dtype) == "Int64" and str(table["score"].dtype) == "Float64"
    assert table["index"].isna().tolist() == [False, True, False]
    assert table.loc[0, "top_k"] == "tiger cat (0.910); tabby (0.050)"
    assert not table.map(lambda value: value is None).any().any()


def test_all_failed_inputs_still_make_a_typed_table():
    table = topk_table(["a.png"], [None], ["unreadable"])
    assert str(table["index"].dtype) == "Int64" and table["index"].isna().all()
    assert table.to_csv(index=False).splitlines()[1] == "a.png,,,,,unreadable"
