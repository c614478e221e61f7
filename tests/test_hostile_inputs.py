"""Hostile input, refused: every bad flag, variable, session name, home or bar file ends in exit 2 with
one message naming the flag, key or file, never a traceback, and nothing written anywhere.

Each case runs the real command line in-process. "Nothing written" is checked on the whole temporary
directory around the home (and the working directory inside it), so a file that escapes the home
through a session name like ``../x`` is caught too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from labkit.cli import main

# Every run below replays an hour fast: should a hostile value ever be accepted, the test fails
# quickly instead of following the clock for ever.
RUN = ["run", "--pace", "fast", "--since", "2026-01-05", "--until", "2026-01-05T01:00", "--session", "t"]
BACKTEST = ["backtest", "--max-bars", "200"]


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _main(args: Sequence[str]) -> int:
    try:
        return main(list(args))
    except SystemExit as exc:  # argparse's own refusals (not a number, unknown choice) exit here
        return int(exc.code or 0)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # A working directory beside the home: a relative path must not land there either.
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    return home


def _refused(home: Path, capsys: pytest.CaptureFixture[str], args: Sequence[str], *expected: str) -> str:
    root = home.parent
    before = _tree(root)
    code = _main(["--home", str(home), *args])
    err = capsys.readouterr().err
    assert code == 2, err
    for text in expected:
        assert text in err
    assert "Traceback" not in err
    assert _tree(root) == before, "a refused command wrote a file"
    return err


# --- session names: one rule, checked by every command --------------------------------------------

_BAD_NAMES = [
    "../sessions/s",
    "../x",
    "..",
    ".",
    "/etc",
    "a/b",
    "a\\b",
    "a\x00b",
    "x" * 65,
    "s\u00e9ance",
    ".hidden",
    "-dash",
    "a b",
    "a\nb",
    "",
    "~root",
]
_SESSION_COMMANDS = {
    "run": RUN,
    "status": ["status"],
    "report": ["report", "session"],
    "stop": ["stop"],
    "emergency-stop": ["emergency-stop"],
    "resume": ["resume"],
    "reduce-only": ["reduce-only"],
    "transition": ["transition", "--to", "shadow"],
    "verify": ["verify"],
    "replay": ["replay"],
    "schedule": ["schedule", "--print-cron"],
}


@pytest.mark.parametrize("command", list(_SESSION_COMMANDS))
@pytest.mark.parametrize("name", ["../sessions/s", "..", "/etc", "a/b", "a\x00b", "x" * 65, ".hidden"])
def test_every_command_when_session_name_is_hostile_refuses_it(home, capsys, command, name):
    _refused(home, capsys, [*_SESSION_COMMANDS[command], f"--session={name}"], "session.name (--session)")


@pytest.mark.parametrize("name", _BAD_NAMES)
@pytest.mark.parametrize("command", ["run", "status", "emergency-stop"])
def test_session_name_when_not_one_directory_is_refused_whatever_it_holds(home, capsys, command, name):
    _refused(home, capsys, [*_SESSION_COMMANDS[command], f"--session={name}"], "--session", "letters, digits")


def test_session_name_when_outside_names_an_existing_session_still_does_not_reach_it(home, capsys):
    # A real session beside the home's: "../other/data/sessions/s" must not command it.
    other = home.parent / "other"
    assert _main(["--home", str(other), *RUN, "--session", "s", "-q"]) == 0
    capsys.readouterr()
    control = other / "data" / "sessions" / "s" / "control.jsonl"
    before = control.read_bytes() if control.exists() else None
    _refused(home, capsys, ["emergency-stop", "--session", "../../other/data/sessions/s"], "--session")
    assert (control.read_bytes() if control.exists() else None) == before


def test_status_when_a_directory_has_a_name_no_command_takes_leaves_it_out(home, capsys):
    # Made by hand: listed, it could only be shown, never stopped or reported.
    assert _main(["--home", str(home), *RUN, "--session", "ok", "-q"]) == 0
    hand_made = home / "data" / "sessions" / "my session"
    hand_made.mkdir()
    (hand_made / "state.json").write_text("{}")
    capsys.readouterr()
    assert _main(["--home", str(home), "status"]) == 0
    out = capsys.readouterr().out
    assert "ok" in out and "my session" not in out


# --- the library, as a notebook calls it ----------------------------------------------------------


@pytest.mark.parametrize("name", ["../x", "/etc", "a/b", "..", ".hidden", "x" * 65, "a\x00b", 7])
def test_session_paths_when_name_is_not_one_directory_refuses_it_for_every_caller(tmp_path, name):
    from labkit import ops
    from labkit.errors import ConfigError
    from labkit.session.paths import existing_session, session_paths

    for call in (session_paths, existing_session, lambda h, n: ops.emergency_stop(n, h)):
        with pytest.raises(ConfigError, match=r"^session\.name: use letters, digits"):
            call(tmp_path, name)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["default", "a", "A.b-c_9", "x" * 64])
def test_session_name_when_it_keeps_the_rule_is_accepted_by_config_and_paths(tmp_path, name):
    from labkit.config_loader import load_config
    from labkit.session.paths import session_paths

    assert load_config(tmp_path, {"session.name": name}).session.name == name
    assert session_paths(tmp_path, name).name == name
