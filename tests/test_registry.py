import json
import shutil

import pytest

from cvplay import registry
from cvplay.registry import ModelCardError, ModelNotFoundError, discover, get_card, list_models, read_card


def test_discovers_cards_and_models(colour_models):
    cards = list_models(dirs=[colour_models])
    assert [card.name for card in cards] == ["colour", "colour-logits"]
    card = cards[0]
    assert card.task == "classify"
    assert card.num_classes == 3
    assert card.input.size == (8, 8)
    assert card.input.std == (255.0, 255.0, 255.0)
    assert card.model_path == (colour_models / "colour.tflite").resolve()


def test_summary_has_the_cli_fields(colour_models):
    summary = get_card("colour", dirs=[colour_models]).summary()
    assert {"name", "task", "num_classes", "path"} <= set(summary)
    assert summary["num_classes"] == 3


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda card: card.pop("name"), "'name'"),
        (lambda card: card.update(task="segment"), "'task'"),
        (lambda card: card.update(labels="red"), "'labels'"),
        (lambda card: card.update(labels=[]), "at least one class"),
        (lambda card: card.update(input={"size": [0, 8]}), "input.size"),
        (lambda card: card.update(input={"resize": "squash"}), "input.resize"),
        (lambda card: card.update(input={"std": [1, 0, 1]}), "input.std"),
        (lambda card: card.update(input={"mean": [1, 2]}), "input.mean"),
        (lambda card: card.update(input={"thumbnail_size": [32]}), "input.thumbnail_size"),
        (lambda card: card.update(input={"thumbnail_size": [0, 32]}), "input.thumbnail_size"),
        (lambda card: card.update(input={"thumbnail_size": "32x32"}), "input.thumbnail_size"),
        (lambda card: card.update(output="scores"), "'output'"),
        (lambda card: card.update(file="elsewhere.tflite"), "is missing"),
        (lambda card: card.update(coarse_labels=["a"], fine_to_coarse=[0, 0]), "one entry per label"),
    ],
)
def test_malformed_cards_give_a_clear_error(tmp_path, colour_models, mutate, message):
    shutil.copy(colour_models / "colour.tflite", tmp_path / "bad.tflite")
    card = json.loads((colour_models / "colour.json").read_text())
    mutate(card)
    (tmp_path / "bad.json").write_text(json.dumps(card))
    with pytest.raises(ModelCardError, match=message.replace("[", r"\[")):
        read_card(tmp_path / "bad.json")


def test_broken_entries_do_not_break_the_listing(tmp_path, colour_models):
    shutil.copytree(colour_models, tmp_path, dirs_exist_ok=True)
    (tmp_path / "not-json.tflite").write_bytes(b"x")
    (tmp_path / "not-json.json").write_text("{ this is not json")
    (tmp_path / "no-card.tflite").write_bytes(b"x")
    (tmp_path / "list.tflite").write_bytes(b"x")
    (tmp_path / "list.json").write_text("[1, 2]")
    entries = {entry.name: entry for entry in discover([tmp_path])}
    assert entries["colour"].ok and entries["colour-logits"].ok
    assert "not valid JSON" in entries["not-json"].error
    assert "no model card" in entries["no-card"].error
    assert "JSON object" in entries["list"].error
    assert [card.name for card in list_models(dirs=[tmp_path])] == ["colour", "colour-logits"]


def test_duplicate_names_keep_the_first(tmp_path, colour_models):
    first, second = tmp_path / "a", tmp_path / "b"
    shutil.copytree(colour_models, first)
    shutil.copytree(colour_models, second)
    entries = discover([first, second])
    assert sum(entry.ok for entry in entries) == 2
    duplicates = [entry for entry in entries if not entry.ok]
    assert len(duplicates) == 2 and all("already used" in entry.error for entry in duplicates)
    assert get_card("colour", dirs=[first, second]).model_path.parent == first.resolve()


def test_finds_models_in_run_folders_two_levels_down(tmp_path, colour_models):
    run = tmp_path / "runs" / "2026-11-23"
    shutil.copytree(colour_models, run)
    assert {card.name for card in list_models(dirs=[tmp_path])} == {"colour", "colour-logits"}


def test_get_by_path_card_model_or_folder(tmp_path, colour_models):
    assert get_card(str(colour_models / "colour.json")).name == "colour"
    assert get_card(str(colour_models / "colour.tflite")).name == "colour"
    single = tmp_path / "single"
    single.mkdir()
    for suffix in (".tflite", ".json"):
        shutil.copy(colour_models / f"colour{suffix}", single / f"colour{suffix}")
    assert get_card(str(single)).name == "colour"
    with pytest.raises(ModelNotFoundError, match="exactly one model"):
        get_card(str(colour_models))


def test_unknown_name_lists_what_is_installed(colour_models):
    with pytest.raises(ModelNotFoundError, match="installed: colour, colour-logits"):
        get_card("nope", dirs=[colour_models])
    with pytest.raises(ModelNotFoundError, match="no such file"):
        get_card("missing/model.tflite", dirs=[colour_models])


def test_user_folder_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CVPLAY_MODELS", str(tmp_path))
    assert registry.model_dirs() == [registry.SHIPPED_MODELS_DIR, tmp_path]
    monkeypatch.delenv("CVPLAY_MODELS")
    assert registry.user_models_dir() == registry.DEFAULT_USER_MODELS_DIR.expanduser()


def test_card_round_trip(tmp_path, colour_models):
    card = get_card("colour", dirs=[colour_models])
    shutil.copy(card.model_path, tmp_path / "colour.tflite")
    registry.write_card(card, tmp_path / "colour.json")
    again = read_card(tmp_path / "colour.json")
    assert again.to_dict() == card.to_dict()
