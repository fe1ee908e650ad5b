"""Secrets: only from the environment or the ``.env`` beside the config, never redirected to
another host by a file that did not set them, never in the TOML file; files holding them are
private (issue 17, items 9 and 12)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tasksync.cli import main
from tasksync.examples import TODAY, generate
from tasksync.settings import load_settings

DAY = TODAY.isoformat()
SECRET_VARS = (
    "TASKSYNC_TRELLO_KEY",
    "TASKSYNC_TRELLO_TOKEN",
    "TASKSYNC_TRELLO_API_URL",
    "TASKSYNC_ASANA_TOKEN",
    "TASKSYNC_ASANA_API_URL",
    "TASKSYNC_TRELLO_SECRET",
    "TASKSYNC_ASANA_WEBHOOK_SECRET",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SECRET_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    return generate(tmp_path / "demo")


def write_env(folder: Path, text: str, mode: int = 0o600) -> Path:
    path = folder / ".env"
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def run(config: Path, *args: str) -> int:
    return main(["--no-color", "-c", str(config), *args])


def err_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_env_file_in_the_working_folder_is_ignored(demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A `.env` dropped where tasksync happens to run cannot redirect the token to its host."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write_env(elsewhere, "TASKSYNC_TRELLO_API_URL=http://attacker.invalid/1\nTASKSYNC_TRELLO_TOKEN=planted\n")
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("TASKSYNC_TRELLO_TOKEN", "real-token")
    s = load_settings(demo)
    assert s.secrets.trello_api_url == "https://api.trello.com/1"
    assert s.secrets.trello_token is not None and s.secrets.trello_token.get_secret_value() == "real-token"


def test_env_file_beside_the_config_is_read(demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_env(demo.parent, "# tokens\nexport TASKSYNC_ASANA_TOKEN='from-dotenv'\nTASKSYNC_TRELLO_KEY=k\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TASKSYNC_TRELLO_KEY", "from-environment")
    s = load_settings(demo)
    assert s.secrets.asana_token is not None and s.secrets.asana_token.get_secret_value() == "from-dotenv"
    assert s.secrets.trello_key is not None and s.secrets.trello_key.get_secret_value() == "from-environment"


@pytest.mark.parametrize("mode", [0o644, 0o604, 0o602])
def test_env_file_others_can_read_is_refused(demo: Path, mode: int, capsys: pytest.CaptureFixture[str]) -> None:
    write_env(demo.parent, "TASKSYNC_TRELLO_TOKEN=t\n", mode)
    assert run(demo, "plan", "--today", DAY) == 2
    err = err_line(capsys)
    assert ".env" in err and "chmod 600" in err and "TASKSYNC_TRELLO_TOKEN=t" not in err


def test_group_readable_env_file_is_accepted(demo: Path) -> None:
    write_env(demo.parent, "TASKSYNC_ASANA_TOKEN=t\n", 0o640)
    assert load_settings(demo).secrets.asana_token is not None


@pytest.mark.parametrize(
    ("url_var", "token_var"),
    [
        ("TASKSYNC_TRELLO_API_URL", "TASKSYNC_TRELLO_TOKEN"),
        ("TASKSYNC_TRELLO_API_URL", "TASKSYNC_TRELLO_KEY"),
        ("TASKSYNC_ASANA_API_URL", "TASKSYNC_ASANA_TOKEN"),
    ],
)
def test_env_file_url_cannot_take_a_token_from_the_environment(
    demo: Path, url_var: str, token_var: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_env(demo.parent, f"{url_var}=http://collector.invalid/1\n")
    monkeypatch.setenv(token_var, "real-secret-value")
    assert run(demo, "plan", "--today", DAY) == 2
    err = err_line(capsys)
    assert url_var in err and token_var in err and "http://collector.invalid/1" in err
    assert "real-secret-value" not in err


def test_url_and_token_from_one_source_are_honoured(demo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_env(demo.parent, "TASKSYNC_ASANA_API_URL=http://127.0.0.1:8766/api/1.0\nTASKSYNC_ASANA_TOKEN=fake\n")
    s = load_settings(demo)
    assert s.secrets.asana_api_url == "http://127.0.0.1:8766/api/1.0"
    (demo.parent / ".env").unlink()
    monkeypatch.setenv("TASKSYNC_TRELLO_API_URL", "http://127.0.0.1:8765/1")
    monkeypatch.setenv("TASKSYNC_TRELLO_TOKEN", "fake-token")
    assert load_settings(demo).secrets.trello_api_url == "http://127.0.0.1:8765/1"


@pytest.mark.parametrize(
    "toml",
    [
        '[secrets]\ntrello_token = "abc"\n',
        "[secrets]\n",
        '[trello]\ntoken = "abc"\n',
        'trello_key = "abc"\n',
        '[asana]\naccess_token = "abc"\n',
    ],
)
def test_secrets_in_the_config_file_are_refused(demo: Path, toml: str, capsys: pytest.CaptureFixture[str]) -> None:
    text = demo.read_text(encoding="utf-8")
    demo.write_text(text + "\n" + toml if toml.startswith("[") else toml + text, encoding="utf-8")
    assert run(demo, "plan", "--today", DAY) == 2
    err = err_line(capsys)
    assert "secrets never go in the config file" in err and "environment" in err
    assert '"abc"' not in err


def test_member_names_like_secret_keys_are_data(demo: Path) -> None:
    with demo.open("a", encoding="utf-8") as fh:
        fh.write('"Token" = "token"\n')  # a rep called Token, in [members]
    assert load_settings(demo).members["Token"] == "token"


# -- files at rest ---------------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_state_store_wal_and_lock_are_private(demo: Path) -> None:
    assert run(demo, "plan", "--today", DAY) == 0
    state = demo.parent / ".tasksync" / "state.sqlite3"
    assert _mode(state) == 0o600
    assert run(demo, "serve", "--once", "--today", DAY) in (0, 4)
    private = [p for p in state.parent.iterdir() if p.is_file()]
    assert {p.name for p in private} >= {"state.sqlite3", "state.sqlite3.service.lock"}
    for p in private:
        assert _mode(p) == 0o600, p


def test_existing_state_store_is_tightened(demo: Path) -> None:
    assert run(demo, "plan", "--today", DAY) == 0
    state = demo.parent / ".tasksync" / "state.sqlite3"
    state.chmod(0o644)
    assert run(demo, "history") == 0
    assert _mode(state) == 0o600


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o664])
def test_board_file_keeps_its_mode(demo: Path, mode: int) -> None:
    board = demo.parent / "board.json"
    board.chmod(mode)
    assert run(demo, "apply", "--now") == 0
    assert json.loads(board.read_text(encoding="utf-8"))["cards"]
    assert _mode(board) == mode
