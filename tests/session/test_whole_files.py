"""Files checked whole before use (issue 19, points 2, 11e and 13a), each a reproduction.

A state.json holding NaN, a journal damaged in the middle, a model file that cannot be loaded: each
is refused with exit 2 naming the file, the place and the repair, before `labkit run` writes
anything. A full disk while writing the tape names the tape.
"""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import pytest

from labkit.cli import main
from labkit.engine.journal import first_gap, journal_damage
from labkit.errors import DataError
from labkit.session.paths import session_paths
from labkit.session.state import SessionState, load_state, save_state

SINCE, UNTIL = "2026-01-05", "2026-01-05T04:00"
RUN = ["run", "--pace", "fast", "--since", SINCE, "--until", UNTIL, "--session", "s"]
LATER = ("--until", "2026-01-05T05:00")
REPAIR = "restore it from a backup, or start over under another name (--session NEW)"


def _run(home: Path, *extra: str) -> int:
    return main(["--home", str(home), *RUN, *extra])


def _paths(home: Path):
    return session_paths(home, "s")


def _files(home: Path) -> dict[str, bytes]:
    # Every file under the home, by its path: what "nothing was changed" is checked against.
    return {str(p.relative_to(home)): p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # One session of 240 decisions, copied for each test that damages it.
    home = tmp_path_factory.mktemp("ran")
    assert _run(home) == 0
    return home


@pytest.fixture
def home(ran: Path, tmp_path: Path) -> Path:
    shutil.copytree(ran, tmp_path / "home")
    return tmp_path / "home"


def _journal_lines(home: Path) -> list[bytes]:
    return _paths(home).decisions.read_bytes().splitlines(keepends=True)


def _write_journal(home: Path, lines: list[bytes]) -> None:
    _paths(home).decisions.write_bytes(b"".join(lines))


# --- state.json holds only finite numbers -----------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "value", "shown"),
    [
        (("portfolio", "cash"), float("nan"), "NaN"),
        (("portfolio", "peak_equity"), float("inf"), "Infinity"),
        (("portfolio", "stop_price"), float("-inf"), "-Infinity"),
        (("transitions",), [{"to": "shadow", "edge": float("nan")}], "NaN"),
    ],
)
def test_run_when_state_json_holds_a_non_finite_number_refuses_naming_the_field(
    home, capsys, where, value, shown
):
    # Arrange: Python's json writes NaN and Infinity, and reads them back, unless told not to
    state = json.loads(_paths(home).state.read_text())
    target = state
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    _paths(home).state.write_text(json.dumps(state))
    before = _files(home)
    # Act
    code = _run(home, *LATER)
    # Assert: refused naming the file, the field and the repair; no decision written with a NaN book
    err = capsys.readouterr().err
    field = ".".join(where)
    assert code == 2, err
    assert f"state.json: {field}" in err and shown in err and "not a finite number" in err
    assert "move it aside" in err and "Traceback" not in err
    assert _files(home) == before


def test_save_state_when_the_book_holds_nan_refuses_and_keeps_the_saved_file(home):
    # Arrange: a book gone wrong in memory
    paths = _paths(home)
    saved = paths.state.read_bytes()
    state = SessionState.from_saved(load_state(paths), 10_000.0)
    state.portfolio.last_equity = float("nan")
    # Act / Assert: never written; the state.json on disk is the last good one
    with pytest.raises(DataError, match=r"state.json: portfolio.last_equity is NaN"):
        save_state(paths, state, {"session": "s"})
    assert paths.state.read_bytes() == saved


# --- the whole journal is checked on resume ---------------------------------------------------------


def _delete_line(lines: list[bytes]) -> list[bytes]:
    return lines[:100] + lines[101:]


def _repeat_line(lines: list[bytes]) -> list[bytes]:
    return lines[:101] + [lines[100]] + lines[101:]


def _flip_bit(lines: list[bytes], after: bytes) -> list[bytes]:
    # One bit of line 101 flipped, in the byte right after `after`: the line keeps its length.
    line = bytearray(lines[100])
    line[line.index(after) + len(after)] ^= 0x01
    return [*lines[:100], bytes(line), *lines[101:]]


def _flip_colon(lines: list[bytes]) -> list[bytes]:
    return _flip_bit(lines, b'"price"')  # ":" becomes ";"


def _flip_seq_digit(lines: list[bytes]) -> list[bytes]:
    return _flip_bit(lines, b'"seq":10')  # 100 becomes 101


def _flip_cash_digit(lines: list[bytes]) -> list[bytes]:
    return _flip_bit(lines, b'"cash":')


def _rename_field(lines: list[bytes]) -> list[bytes]:
    return [*lines[:100], lines[100].replace(b'"cash":', b'"cask":'), *lines[101:]]


def _null_cash(lines: list[bytes]) -> list[bytes]:
    line = json.loads(lines[100])
    line["cash"] = None
    return [*lines[:100], json.dumps(line, separators=(",", ":")).encode() + b"\n", *lines[101:]]


def _swap_lines(lines: list[bytes]) -> list[bytes]:
    return [*lines[:100], lines[101], lines[100], *lines[102:]]


def _damage_last_whole_line(lines: list[bytes]) -> list[bytes]:
    return [*lines[:-1], lines[-1][:40] + b"\n"]


@pytest.mark.parametrize(
    ("damage", "line", "why"),
    [
        (_delete_line, 101, "seq 101 where 100 was due"),
        (_repeat_line, 102, "seq 100 where 101 was due"),
        (_flip_colon, 101, "not JSON"),
        (_flip_seq_digit, 101, "seq 101 where 100 was due"),
        (_flip_cash_digit, 101, "cash"),
        (_rename_field, 101, "cash"),
        (_null_cash, 101, "cash is None, not a number"),
        (_swap_lines, 101, "seq 101 where 100 was due"),
        (_damage_last_whole_line, 240, "not JSON"),
    ],
    ids=[
        "deleted",
        "repeated",
        "flipped-colon",
        "flipped-seq",
        "flipped-cash",
        "renamed-field",
        "null-cash",
        "swapped",
        "last-line",
    ],
)
def test_run_when_the_journal_is_damaged_anywhere_refuses_naming_the_line(home, capsys, damage, line, why):
    # Arrange
    _write_journal(home, damage(_journal_lines(home)))
    before = _files(home)
    # Act
    code = _run(home, *LATER)
    # Assert: exit 2 naming the line and the repair, and not one byte changed
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"decisions.jsonl line {line}: " in err and why in err and REPAIR in err
    assert "Nothing was changed" in err and "Traceback" not in err
    assert _files(home) == before


def test_run_when_the_journal_ends_in_a_torn_line_cuts_it_with_a_warning_and_goes_on(home, caplog):
    # Arrange: a kill mid-write left half a line
    lines = _journal_lines(home)
    _write_journal(home, [*lines, b'{"schema":1,"session":"s","seq":240,"ts":"2026-01-05T04:'])
    # Act
    code = _run(home, *LATER)
    # Assert
    seqs = [json.loads(raw)["seq"] for raw in _journal_lines(home)]
    assert code == 0 and seqs == list(range(300))
    assert "cut a torn last line" in caplog.text


def test_journal_damage_when_every_line_is_whole_finds_none_and_first_gap_agrees(home):
    assert journal_damage(_paths(home).decisions) is None
    assert first_gap(_paths(home).decisions) is None


def test_first_gap_when_a_line_is_not_json_reports_it_even_if_its_seq_reads_right(home):
    # Arrange: the seq is intact, a quote elsewhere is gone
    lines = _journal_lines(home)
    _write_journal(home, [*lines[:100], lines[100].replace(b'"cash"', b'cash"'), *lines[101:]])
    # Act
    gap = first_gap(_paths(home).decisions)
    damage = journal_damage(_paths(home).decisions)
    # Assert
    assert gap == (101, 100, -1)
    assert damage is not None and damage.line == 101 and "not JSON" in damage.problem


# --- a refused run changes nothing ------------------------------------------------------------------


def _lose_journal(home: Path) -> None:
    _paths(home).decisions.unlink()


def _nan_state(home: Path) -> None:
    state = json.loads(_paths(home).state.read_text())
    state["portfolio"]["cash"] = float("nan")
    _paths(home).state.write_text(json.dumps(state))


@pytest.mark.parametrize(
    ("arrange", "flags", "said"),
    [
        (_lose_journal, (), "ends at seq -1"),
        (_nan_state, (), "not a finite number"),
        (None, ("--symbol", "ETH/USDT"), "session.symbol"),
        (None, ("--mode", "shadow"), "session.mode"),
    ],
    ids=["journal-lost", "nan-state", "other-symbol", "other-mode"],
)
def test_run_when_refused_creates_and_changes_nothing(home, capsys, arrange, flags, said):
    # Arrange
    if arrange is not None:
        arrange(home)
    before = _files(home)
    # Act
    code = _run(home, *LATER, *flags)
    # Assert: not even an empty decisions.jsonl or tape.jsonl appears
    err = capsys.readouterr().err
    assert code == 2 and said in err, err
    assert _files(home) == before


# --- a model that cannot be loaded ------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    # A one-member model of BTC/USDT 1m: loading it is what is tested, not what it predicts.
    from labkit.features.featureset import FeatureSet
    from labkit.models.artifacts import save_model
    from labkit.models.ensemble import Calibrator, Ensemble
    from tests.models.conftest import META, fitted, planted

    home = tmp_path_factory.mktemp("model-home")
    schema = FeatureSet(["ret_1", "ret_5", "vol_15", "rsi_14", "hl_range"]).schema.to_dict()
    member = fitted("logistic")
    X, y = planted(500, seed=1)
    ensemble = Ensemble([member], [1.0], Calibrator.fit(member.predict_proba(X), y), schema, [0.6])
    return home, save_model(home, ensemble, {**META, "timeframe": "1m"})


@pytest.fixture
def model_copy(model_home: tuple[Path, str], tmp_path: Path) -> tuple[Path, str]:
    home, model_id = model_home
    shutil.copytree(home, tmp_path / "home")
    return tmp_path / "home", model_id


def _corrupt_member(folder: Path) -> str:
    member = next(p for p in folder.rglob("*.skops"))
    data = bytearray(member.read_bytes())
    data[len(data) // 2] ^= 0xFF
    member.write_bytes(bytes(data))
    return member.name


def _edit_model_json(folder: Path) -> str:
    doc = json.loads((folder / "model.json").read_text())
    doc["horizon"] = 1
    (folder / "model.json").write_text(json.dumps(doc))
    return "model.json"


@pytest.mark.parametrize("damage", [_corrupt_member, _edit_model_json], ids=["member", "model.json"])
def test_run_when_the_model_cannot_be_loaded_refuses_naming_the_file_and_creates_nothing(
    model_copy, capsys, damage
):
    # Arrange
    home, model_id = model_copy
    name = damage(home / "data" / "models" / model_id)
    before = _files(home)
    # Act
    code = _run(home, "--strategy", "model", "--model", model_id)
    # Assert
    err = capsys.readouterr().err
    assert code == 2, err
    assert name in err and "train it again" in err and "Traceback" not in err
    assert _files(home) == before


def test_run_when_a_resumed_sessions_model_is_damaged_refuses_and_changes_nothing(model_copy, capsys):
    # Arrange: a session that decided with its model, whose member file was then damaged
    home, model_id = model_copy
    assert _run(home, "--strategy", "model", "--model", model_id) == 0
    _corrupt_member(home / "data" / "models" / model_id)
    before = _files(home)
    # Act
    code = _run(home, *LATER)
    # Assert
    err = capsys.readouterr().err
    assert code == 2 and "skops" in err and "Traceback" not in err, err
    assert _files(home) == before


def test_run_when_no_model_is_trained_yet_holds_with_model_unavailable_without_a_traceback(tmp_path, capsys):
    # Act: `latest` before any training: the session runs, holds, and says why in one line
    code = _run(tmp_path, "--strategy", "model")
    # Assert
    err = capsys.readouterr().err
    lines = [json.loads(raw) for raw in _journal_lines(tmp_path)]
    assert code == 0 and "cannot be loaded" in err and "Traceback" not in err
    assert {line["gate_trace"]["reason"] for line in lines if line["gate_trace"]["stage"] == "model"} == {
        "model_unavailable"
    }


# --- a full disk names the file ---------------------------------------------------------------------


class _FullDisk:
    """A file that takes nothing: every write or flush fails as a full disk does (no file name)."""

    closed = False

    def write(self, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    def flush(self) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    def fileno(self) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    def close(self) -> None:
        self.closed = True


def test_run_when_the_disk_fills_writing_the_tape_names_the_tape(home, capsys, monkeypatch):
    # Arrange
    import labkit.session.tape as tape

    monkeypatch.setattr(tape, "open_append", lambda path: _FullDisk())
    # Act
    code = _run(home, *LATER)
    # Assert
    err = capsys.readouterr().err
    assert code == 2
    assert "tape.jsonl: No space left on device" in err and "Traceback" not in err
