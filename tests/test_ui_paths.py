"""How pages show folder paths: the home folder as ``~``."""

from pathlib import Path

from cvplay_ui.paths import shown_path


def test_paths_under_home_are_shown_with_a_tilde(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    assert shown_path(tmp_path / "me" / ".cvplay" / "models") == str(Path("~/.cvplay/models"))
    assert shown_path("/srv/models") == "/srv/models"
