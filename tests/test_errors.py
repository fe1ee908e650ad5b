"""Bad input and a failing machine give one line naming the file and the documented exit code,
never a traceback, and leave nothing half-written (issue 17, item 10)."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tasksync.cli import main
from tasksync.examples import TODAY, generate

DAY = TODAY.isoformat()


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    return generate(tmp_path / "demo")


def run(config: Path, *args: str) -> int:
    return main(["--no-color", "-c", str(config), *args])


def one_line(capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("tasksync: "), err
    for needle in needles:
        assert needle.casefold() in err.casefold(), err
    return err


def edit_board(config: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = config.parent / "board.json"
    board = json.loads(path.read_text(encoding="utf-8"))
    change(board)
    path.write_text(json.dumps(board), encoding="utf-8")


# -- the board file ------------------------------------------------------------------------------

BAD_FILES: dict[str, Callable[[Path], None]] = {
    "not UTF-8": lambda p: p.write_bytes('{"name": "Vente été", "lists": [], "cards": []}'.encode("latin-1")),
    "binary": lambda p: p.write_bytes(bytes(range(256)) * 4),
    "a directory": lambda p: (p.unlink(), p.mkdir()),  # type: ignore[func-returns-value]
    "deeply nested": lambda p: p.write_text("[" * 200_000 + "]" * 200_000, encoding="utf-8"),
}


@pytest.mark.parametrize("kind", BAD_FILES)
def test_unreadable_board_file_is_one_line(demo: Path, kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    BAD_FILES[kind](demo.parent / "board.json")
    assert run(demo, "plan", "--today", DAY) == 2
    one_line(capsys, "board.json")
    assert run(demo, "serve", "--once", "--today", DAY) == 1  # logged in one line, retried later
    err = capsys.readouterr().err
    assert "Traceback" not in err and "board.json" in err


BAD_CARDS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "card without id": (lambda b: b["cards"][3].pop("id"), "cards[3]"),
    "null card": (lambda b: b["cards"].__setitem__(5, None), "cards[5]"),
    "card item not an object": (
        lambda b: b["cards"][0].__setitem__("customFieldItems", ["D00001"]),
        "customFieldItems[0]",
    ),
    "item value not an object": (
        lambda b: b["customFieldItems"][0].__setitem__("value", "D00001"),
        "customFieldItems[0]",
    ),
    "item with a list idValue": (
        lambda b: b["customFieldItems"][0].__setitem__("idValue", ["x"]),
        "idValue",
    ),
    "null board item": (lambda b: b["customFieldItems"].__setitem__(2, None), "customFieldItems[2]"),
    "list pos as text": (lambda b: b["lists"][0].__setitem__("pos", "top"), "pos"),
    "due as a number": (lambda b: b["cards"][1].__setitem__("due", 20261126), "due"),
}


@pytest.mark.parametrize("kind", BAD_CARDS)
def test_bad_card_is_named_in_one_line(demo: Path, kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    change, needle = BAD_CARDS[kind]
    edit_board(demo, change)
    assert run(demo, "plan", "--today", DAY) == 2
    one_line(capsys, "board.json", needle)
    assert run(demo, "serve", "--once", "--today", DAY) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and needle in err


def test_string_members_are_never_one_member_per_character(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A hand-edited ``"idMembers": "<id>"``: refused in one line naming it, or read as that
    member; applying never writes its characters back as members."""
    board = json.loads((demo.parent / "board.json").read_text(encoding="utf-8"))
    member = board["cards"][0]["idMembers"][0]
    edit_board(demo, lambda b: b["cards"][0].__setitem__("idMembers", member))
    rc = run(demo, "apply", "--now")
    if rc == 2:
        one_line(capsys, "board.json", "idMembers")
    else:
        assert rc in (0, 1)
    after = json.loads((demo.parent / "board.json").read_text(encoding="utf-8"))
    members = {m["id"] for m in after["members"]}
    for card in after["cards"]:
        ids = card["idMembers"] if isinstance(card["idMembers"], list) else [card["idMembers"]]
        assert set(ids) <= members, card


# -- the config file -----------------------------------------------------------------------------


def test_binary_config_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "tasksync.toml"
    config.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    assert run(config, "plan") == 2
    one_line(capsys, str(config), "UTF-8")
    assert run(config, "status") == 1  # status keeps 2 free for container health checks
    one_line(capsys, str(config))


# -- the state store -----------------------------------------------------------------------------


def _state(config: Path) -> Path:
    return config.parent / ".tasksync" / "state.sqlite3"


def test_corrupt_state_store_is_one_line(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(demo, "plan", "--today", DAY) == 0
    for suffix in ("-wal", "-shm"):
        Path(str(_state(demo)) + suffix).unlink(missing_ok=True)
    _state(demo).write_bytes(b"this is not a database, " * 400)
    capsys.readouterr()
    for args, code in ((("plan",), 2), (("apply",), 2), (("history",), 2), (("serve", "--once"), 2), (("status",), 1)):
        assert run(demo, *args) == code, args
        one_line(capsys, "state.sqlite3", "not a database")


def test_state_folder_that_cannot_be_created(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = demo.parent / "not-a-folder"
    blocker.write_text("x", encoding="utf-8")
    state = blocker / "state.sqlite3"
    for args in (("plan",), ("serve", "--once")):
        assert main(["--no-color", "-c", str(demo), "--state", str(state), *args]) == 2, args
        one_line(capsys, "not-a-folder")


def _connect_with(monkeypatch: pytest.MonkeyPatch, setup: Callable[[sqlite3.Connection], None]) -> None:
    real = sqlite3.connect

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        db = real(*args, **kwargs)
        setup(db)
        return db

    monkeypatch.setattr(sqlite3, "connect", connect)


def test_read_only_state_store_is_one_line(
    demo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(demo, "plan", "--today", DAY) == 0
    capsys.readouterr()
    _connect_with(monkeypatch, lambda db: db.execute("PRAGMA query_only=ON"))
    for args in (("plan", "--today", DAY), ("serve", "--once", "--today", DAY)):
        assert run(demo, *args) == 2, args
        one_line(capsys, "state.sqlite3", "readonly")


def _board_cards(config: Path) -> dict[str, tuple[Any, ...]]:
    board = json.loads((config.parent / "board.json").read_text(encoding="utf-8"))
    items = {(i["idModel"], i["idCustomField"]): i.get("idValue") for i in board["customFieldItems"]}
    out: dict[str, tuple[Any, ...]] = {}
    for c in board["cards"]:
        values = tuple(sorted(v for (m, _), v in items.items() if m == c["id"] and v))
        key = c["desc"] if c.get("desc", "").endswith("]") else c["id"]  # created cards get fresh ids
        assert key not in out, f"duplicated card {c['name']!r}"
        out[key] = (tuple(sorted(c["idMembers"])), c["idList"], c["closed"], values)
    return out


def _clean_run(tmp_path: Path) -> dict[str, tuple[Any, ...]]:
    ref = generate(tmp_path / "reference")
    assert run(ref, "plan", "--today", DAY) == 0
    assert run(ref, "apply") == 0
    return _board_cards(ref)


def test_disk_full_mid_apply_then_apply_finishes(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The disk fills after a few board saves: one line, exit 1, the board file still whole; once
    there is room, `apply` finishes the plan and the board equals an uninterrupted run's."""
    expected = _clean_run(tmp_path)
    assert run(demo, "plan", "--today", DAY) == 0
    real_fsync = os.fsync
    calls = {"n": 0}

    def fsync(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] > 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    capsys.readouterr()
    assert run(demo, "apply") == 1
    one_line(capsys, "no space left")
    json.loads((demo.parent / "board.json").read_text(encoding="utf-8"))  # whole, not half-written
    assert not list(demo.parent.glob(".board.json.*.tmp"))  # no temporary file left behind
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert run(demo, "apply") == 0
    assert _board_cards(demo) == expected


def test_full_state_store_mid_apply_then_apply_finishes(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = _clean_run(tmp_path)
    assert run(demo, "plan", "--today", DAY) == 0

    def cap(db: sqlite3.Connection) -> None:  # no page beyond those the store has now
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count={pages}")

    _connect_with(monkeypatch, cap)
    capsys.readouterr()
    assert run(demo, "apply") == 2  # the store cannot be written: nothing more is sent
    one_line(capsys, "state.sqlite3", "full")
    monkeypatch.undo()
    assert run(demo, "apply") == 0
    assert _board_cards(demo) == expected


# -- names are printed as they are -----------------------------------------------------------------


def test_brackets_in_board_and_rep_names_print_literally(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit_board(demo, lambda b: b.__setitem__("name", "Sales [/] [bold]EMEA[/bold]"))
    reps = demo.parent / "crm" / "reps.csv"
    text = reps.read_text(encoding="utf-8")
    reps.write_text(text.replace("Ana Alvarez,", "Ana [red]Alvarez[/] [/],"), encoding="utf-8")
    assert run(demo, "plan", "--today", DAY) == 0
    out = capsys.readouterr().out
    assert "Sales [/] [bold]EMEA[/bold]" in out
    assert "Ana [red]Alvarez[/] [/]" in out
    assert run(demo, "report", "--today", DAY) == 0
    assert "Ana [red]Alvarez[/] [/]" in capsys.readouterr().out


def test_state_from_the_environment_is_used(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "var" / "lib" / "tasksync" / "demo" / "state.sqlite3"
    monkeypatch.setenv("TASKSYNC_STATE", str(state))
    assert run(demo, "serve", "--once", "--today", DAY) in (0, 4)
    assert state.exists() and not (demo.parent / ".tasksync").exists()
    capsys.readouterr()
    assert run(demo, "status") in (0, 3, 4)
    assert "never ran" not in capsys.readouterr().out


def _unit(name: str) -> dict[str, list[str]]:
    text = (Path(__file__).resolve().parents[1] / "deploy" / name).read_text(encoding="utf-8")
    keys: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            keys.setdefault(key.strip(), []).append(value.strip())
    return keys


def test_systemd_units_keep_the_state_store_in_a_writable_folder() -> None:
    """/etc/tasksync is read-only to the service: the default state_path beside the config would
    fail, so both units name a state store under the folder the service may write."""
    serve = _unit("tasksync@.service")
    writable = serve["ReadWritePaths"][0].split()
    readonly = serve["ReadOnlyPaths"][0].split()
    for unit in (serve, _unit("tasksync-status@.service")):
        env = dict(v.split("=", 1) for v in unit.get("Environment", []))
        state = env["TASKSYNC_STATE"]
        assert any(state.startswith(w.rstrip("/") + "/") for w in writable), state
        assert not any(state.startswith(r.rstrip("/") + "/") for r in readonly), state
    assert "2" in serve["RestartPreventExitStatus"][0].split()


def test_bad_command_line_values_are_one_line(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(demo, "plan", "--today", "2026-13-45") == 2
    one_line(capsys, "--today", "YYYY-MM-DD")
    assert run(demo, "serve", "--once", "--today", "soon") == 2
    one_line(capsys, "--today")
    with pytest.raises(SystemExit) as exit_info:
        run(demo, "serve", "--webhook-port", "70000")
    assert exit_info.value.code == 2
    assert "not a port number" in capsys.readouterr().err


def test_serve_with_a_full_state_store_logs_one_line(
    demo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(demo, "plan", "--today", DAY) == 0

    def cap(db: sqlite3.Connection) -> None:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute(f"PRAGMA max_page_count={db.execute('PRAGMA page_count').fetchone()[0]}")

    _connect_with(monkeypatch, cap)
    capsys.readouterr()
    assert run(demo, "serve", "--once", "--today", DAY) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "full" in err, err


def test_output_to_a_reader_that_leaves_is_not_a_traceback(demo: Path) -> None:
    """`tasksync plan --json | head -1`: the reader closes the pipe; no traceback, SIGPIPE's code."""
    import subprocess
    import sys

    script = "import sys; from tasksync.cli import main; sys.exit(main())"
    cmd = [sys.executable, "-c", script, "-c", str(demo), "plan", "--json", "--today", TODAY.isoformat()]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.read(1) == b"{"
    proc.stdout.close()  # the reader leaves while the plan's JSON (over 100 KB, more than a pipe holds) is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_native_output_does_not_corrupt_json(demo: Path) -> None:
    """`tasksync plan --json > plan.json`: what native code writes to file descriptor 1 while the
    plan is computed (HiGHS prints a line now and then, whatever its options) goes to standard
    error; standard output holds the JSON document alone."""
    import json
    import subprocess
    import sys

    script = (
        "import os, sys\n"
        "import tasksync.policies.optimal as o\n"
        "decide = o.OptimalPolicy.decide\n"
        "def noisy(self, book, rules):\n"
        "    os.write(1, b'HighsMipSolverData::noise\\n')\n"  # as the C++ solver writes it
        "    return decide(self, book, rules)\n"
        "o.OptimalPolicy.decide = noisy\n"
        "from tasksync.cli import main\n"
        "sys.exit(main())\n"
    )
    cmd = [sys.executable, "-c", script, "-c", str(demo), "plan", "--json", "--today", TODAY.isoformat()]
    done = subprocess.run(cmd, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout)["kind"] == "plan"
    assert b"HighsMipSolverData::noise" in done.stderr
