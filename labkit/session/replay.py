"""Replay parity: feed a session's recorded tape through the engine again and compare decisions.

Identical decisions (every field but the wall-clock ones) prove that what the session recorded is
exactly what the engine makes of those bars; the first difference is named by its seq and field.
Before any bar is replayed, the journal is held against ``state.json``: a journal that ends before
or after the state's last decision fails naming both seqs (`journal_against_state`), and so does a
tape that ends before the journal. A damaged journal or tape line is refused (`ConfigError`),
naming the file, the line and the repair.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from labkit._io import last_whole_line
from labkit.config.assembly import build_engine, engine_settings
from labkit.config.schema import LabkitConfig
from labkit.engine.journal import JournalWriter, first_gap, iter_lines
from labkit.errors import ConfigError
from labkit.session.control import apply_command
from labkit.session.lock import lock_held
from labkit.session.paths import SessionPaths, existing_session
from labkit.session.state import SessionState, load_state, read_saved_config
from labkit.session.tape import frame
from labkit.timeutil import parse_instant

WALL_CLOCK_FIELDS = ("decided_at", "correlation_id")
_JOURNAL_REPAIR = "restore decisions.jsonl from a backup, or start over under another name (--session NEW)"
_TAPE_REPAIR = (
    "restore tape.jsonl from a backup to replay the session; the journal and the state do not need "
    "it, so `labkit run` goes on without it"
)


@dataclass(frozen=True)
class ReplayResult:
    session: str
    compared: int
    identical: bool
    first_seq: int | None = None
    field: str | None = None
    recorded: Any = None
    replayed: Any = None
    mismatch: str | None = None  # the files disagree as a whole (journal, state, tape), in words

    def describe(self) -> str:
        if self.mismatch is not None:
            return f"session {self.session}: {self.mismatch}"
        if self.identical:
            return f"session {self.session}: {self.compared} decisions replayed, all identical"
        return (
            f"session {self.session}: decisions differ at seq {self.first_seq}, field {self.field!r}: "
            f"recorded {self.recorded!r}, replayed {self.replayed!r}"
        )


def replay_session(home: Path, session: str) -> ReplayResult:
    """Run the session's tape through a fresh engine and compare with its journal and state.

    Raises
    ------
    ConfigError
        When ``config.json``, ``state.json`` or the tape is missing or damaged, or a journal or tape
        line is not what it should be, naming the file, the line and the repair.
    """
    paths = existing_session(home, session)
    config = _saved_config(paths, session)
    last = last_decision(paths.decisions)
    mismatch = journal_against_state(paths, last)
    if mismatch is not None:
        return ReplayResult(session, 0, False, mismatch=mismatch)
    gap = first_gap(paths.decisions, config.session.symbols)
    if gap is not None and gap[2] < 0:
        raise _not_a_decision(paths.decisions, gap[0])
    if gap is not None and gap[2] != gap[1]:
        # A hole in the record cannot be proved identical to anything: name where it starts. (A line
        # in its place but damaged otherwise is compared below, naming the field.)
        return ReplayResult(session, gap[0] - 1, False, gap[1], "seq", "a decision", f"seq {gap[2]}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "replayed.jsonl"
        _run_tape(config, paths.tape, out, None if last is None else parse_instant(last["ts"]), home)
        return _compare(session, paths.decisions, out, -1 if last is None else last["seq"])


def _saved_config(paths: SessionPaths, session: str) -> LabkitConfig:
    saved_config = read_saved_config(paths)
    if saved_config is None or not paths.tape.exists():
        raise ConfigError(
            f"session: session {session!r} has no {'config.json' if saved_config is None else 'tape.jsonl'} "
            f"in {paths.root}, so there is nothing to replay"
        )
    try:
        return LabkitConfig.model_validate(saved_config)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(part) for part in err["loc"])
        raise ConfigError(
            f"{paths.config}: {where}: {err['msg']}; the session's record of how it started is "
            "damaged: put back a good copy to replay it"
        ) from None


def last_decision(journal: Path) -> dict[str, Any] | None:
    """Return the journal's last whole line, or None when it holds none, reading only its tail.

    A torn last line (a kill mid-write) is not counted: the next run cuts it.

    Raises
    ------
    ConfigError
        When that line is not a decision (not JSON, no whole-number ``seq``, no ``ts``), naming
        the file, the line and the repair.
    """
    raw = last_whole_line(journal, skip_blank=False)
    if raw is None:
        return None
    try:
        line = orjson.loads(raw)
        if type(line) is not dict or type(line["seq"]) is not int:
            raise TypeError
        parse_instant(line["ts"])
    except (KeyError, TypeError, ValueError, ConfigError):
        raise _not_a_decision(journal, _count_lines(journal)) from None
    return line


def journal_against_state(paths: SessionPaths, last: dict[str, Any] | None) -> str | None:
    """Return how the journal's last decision `last` disagrees with ``state.json``'s, or None.

    A journal behind the state lost decisions. One ahead of it was left by a run interrupted
    before it saved its state (the next `labkit run` folds those lines in); while a run holds the
    lock, its state follows its journal at the next checkpoint, so that is no disagreement.

    Raises
    ------
    ConfigError
        When ``state.json`` is missing or damaged, naming the repair.
    """
    state = load_state(paths)
    if state is None:
        raise ConfigError(
            f"{paths.state} is missing, so the journal cannot be checked against it; "
            f"`labkit run --session {paths.name}` rebuilds it from decisions.jsonl and control.jsonl"
        )
    state_seq = int(state["portfolio"].get("last_seq", -1))
    journal_seq = -1 if last is None else int(last["seq"])
    ends = "holds no decision" if last is None else f"ends at seq {journal_seq}"
    if journal_seq < state_seq:
        return (
            f"{paths.decisions} {ends}, but {paths.state} is at seq {state_seq}: "
            f"{_how_many(state_seq - journal_seq)} missing from the journal (a truncated or replaced "
            f"file); {_JOURNAL_REPAIR}"
        )
    if journal_seq > state_seq and not lock_held(paths):
        return (
            f"{paths.decisions} {ends}, ahead of {paths.state} at seq {state_seq}: a run was "
            f"interrupted before it saved its state; `labkit run --session {paths.name}` takes the "
            f"{journal_seq - state_seq} decisions in, then replay again"
        )
    return None


def _count_lines(path: Path) -> int:
    # The number of the last whole line: how many newlines the file holds.
    with open(path, "rb") as handle:
        return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))


def _not_a_decision(journal: Path, number: int) -> ConfigError:
    return ConfigError(
        f"{journal} line {number}: not a decision line; the journal is damaged: {_JOURNAL_REPAIR}"
    )


def _run_tape(config: LabkitConfig, tape: Path, out: Path, last_ts: int | None, home: Path) -> None:
    try:
        _feed_tape(config, tape, out, last_ts, home)
    except (KeyError, TypeError, ValueError, AttributeError):
        # Only a damaged tape gets here: look for the line to name, line by line.
        bad = _first_bad_tape_line(tape)
        if bad is None:
            raise
        number, problem = bad
        raise ConfigError(f"{tape} line {number}: {problem}; the tape is damaged: {_TAPE_REPAIR}") from None


def _feed_tape(config: LabkitConfig, tape: Path, out: Path, last_ts: int | None, home: Path) -> None:
    journal = JournalWriter(out)
    try:
        _feed_engine(config, tape, journal, last_ts, home)
    finally:
        journal.close()


def _feed_engine(
    config: LabkitConfig, tape: Path, journal: JournalWriter, last_ts: int | None, home: Path
) -> None:
    if len(config.session.symbols) > 1:
        _feed_book(config, tape, journal, last_ts, home)
        return
    mode: str = config.session.mode
    engine = build_engine(config, mode, journal=journal, home=home, strict=False)

    def command(cmd: dict[str, Any]) -> None:
        nonlocal mode
        applied = apply_command(SessionState(engine.portfolio), cmd, mode)
        if applied.mode:
            mode = applied.mode
            engine.settings = engine_settings(config, mode)

    _feed(
        tape,
        last_ts,
        engine.portfolio,
        key=lambda row: row["ts"],
        prime=lambda rows: engine.prime(frame(rows)),
        decide=lambda rows, now: engine.process(frame(rows), now=now),
        unavailable=engine.unavailable,
        command=command,
    )


def _feed_book(
    config: LabkitConfig, tape: Path, journal: JournalWriter, last_ts: int | None, home: Path
) -> None:
    # A book's tape rows name their symbols: each run of them decided at one `now` is one universe.
    from labkit.config.assembly import build_book_engine
    from labkit.data.universe import align
    from labkit.engine.book import BookSettings

    symbols = list(config.session.symbols)
    mode: str = config.session.mode
    engine = build_book_engine(config, symbols, mode, journal=journal, home=home, strict=False)

    def universe(rows: list[dict[str, Any]]) -> Any:
        return align({s: frame([r for r in rows if r["symbol"] == s]) for s in symbols})

    def command(cmd: dict[str, Any]) -> None:
        nonlocal mode
        applied = apply_command(SessionState(engine.book.top, legs=engine.book.legs), cmd, mode)
        if applied.mode:
            mode = applied.mode
            engine.settings = BookSettings(engine_settings(config, mode), config.portfolio)

    _feed(
        tape,
        last_ts,
        engine.book.top,
        key=lambda row: (row["ts"], row["symbol"]),
        prime=lambda rows: engine.prime(universe(rows).bars_by_symbol()),
        decide=lambda rows, now: engine.process(universe(rows), now=now),
        unavailable=engine.unavailable,
        command=command,
    )


def _feed(
    tape: Path,
    last_ts: int | None,
    book: Any,
    key: Callable[[dict[str, Any]], Any],
    prime: Callable[[list[dict[str, Any]]], object],
    decide: Callable[[list[dict[str, Any]], int | None], object],
    unavailable: Callable[[list[int], int], object],
    command: Callable[[dict[str, Any]], object],
) -> None:
    # The tape's rows in order: history primes a fresh engine, bars and unavailable times are decided
    # once a commit says they were, in runs of one `now`, and commands apply between the bars.
    history: dict[Any, dict[str, Any]] = {}  # a restart before any decision primes again
    buffered: list[dict[str, Any]] = []

    def commit(upto: int | None) -> None:
        # Bars count only once a checkpoint (or the journal's end) says they were decided; bars a
        # crash cut off before deciding were fetched again after the restart and appear again later.
        rows = [r for r in buffered if upto is not None and r["ts"] <= upto]
        buffered.clear()
        if rows and history and book.last_ts is None:
            prime([history[k] for k in sorted(history)])
        start = 0
        for end in range(1, len(rows) + 1):
            if end == len(rows) or (rows[end]["kind"], rows[end]["now"]) != (
                rows[start]["kind"],
                rows[start]["now"],
            ):
                group = rows[start:end]
                if group[0]["kind"] == "unavailable":
                    unavailable([r["ts"] for r in group], group[0]["now"])
                else:
                    decide(group, group[0]["now"])
                start = end

    for row in iter_lines(tape):
        kind = row["kind"]
        if kind == "history":
            if book.last_ts is None and not buffered:
                history[key(row)] = row
        elif kind in ("bar", "unavailable"):
            buffered.append(row)
        elif kind == "commit":
            commit(row["last_ts"])
        elif kind == "command":
            commit(book.last_ts)
            command(row["command"])
        else:
            raise ValueError(kind)
    commit(last_ts)


_PRICES = ("open", "high", "low", "close", "volume")


def _first_bad_tape_line(tape: Path) -> tuple[int, str] | None:
    """Return the number of the tape's first damaged line and what is wrong with it, or None."""
    with open(tape, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.endswith(b"\n"):
                return None  # a torn tail: the next run cuts it
            try:
                row = orjson.loads(raw)
            except orjson.JSONDecodeError:
                return number, f"not JSON ({raw[:60]!r})"
            problem = _tape_line_problem(row)
            if problem is not None:
                return number, problem
    return None


def _tape_line_problem(row: Any) -> str | None:
    # What is wrong with one tape line, in words; None when it is a line the tape may hold.
    if type(row) is not dict:
        return f"a JSON {type(row).__name__}, not a tape line"
    kind = row.get("kind")
    if kind in ("history", "bar"):
        wrong = [] if type(row.get("ts")) is int else ["ts"]
        wrong += [key for key in _PRICES if type(row.get(key)) not in (int, float)]
        if kind == "bar" and type(row.get("now", "")) not in (int, type(None)):
            wrong.append("now")  # a bar's decision time: null in a fast run, never absent
        return f"a {kind} line without {', '.join(wrong)} as numbers" if wrong else None
    if kind == "unavailable":
        if type(row.get("ts")) is int and type(row.get("now")) is int:
            return None
        return "an unavailable line without ts and now as numbers"
    if kind == "commit":
        if type(row.get("last_ts", "")) in (int, type(None)):
            return None
        return "a commit line without last_ts as a number or null"
    if kind == "command":
        return None if type(row.get("command")) is dict else "a command line without its command"
    return f"kind {kind!r} is not one of history, bar, unavailable, commit, command"


def _compare(session: str, recorded: Path, replayed: Path, journal_seq: int) -> ReplayResult:
    compared = 0
    mine = iter_lines(replayed)
    for theirs in _decisions(recorded):
        ours = next(mine, None)
        if ours is None:
            # The tape ran out before the journal did: what it lacks cannot be compared.
            return ReplayResult(
                session,
                compared,
                False,
                mismatch=(
                    f"the tape ends before the journal: its bars replay decisions up to seq "
                    f"{compared - 1}, but {recorded} goes on to seq {journal_seq}; {_TAPE_REPAIR}"
                ),
            )
        # Both lines' keys: a field only some lines have (`exit_fill`) may be on either side alone.
        for key in dict.fromkeys([*theirs, *ours]):
            if key not in WALL_CLOCK_FIELDS and ours.get(key) != theirs.get(key):
                return ReplayResult(
                    session, compared, False, theirs["seq"], key, theirs.get(key), ours.get(key)
                )
        compared += 1
    beyond = sum(1 for _ in mine)
    if beyond:
        # Bars the tape says were decided and journaled, missing from the journal and the state.
        return ReplayResult(
            session,
            compared,
            False,
            mismatch=(
                f"{recorded} ends at seq {journal_seq}, but the tape says the session decided up to seq "
                f"{journal_seq + beyond}: {_how_many(beyond)} missing from the journal and "
                f"state.json (both restored from an older backup?); {_JOURNAL_REPAIR}"
            ),
        )
    return ReplayResult(session, compared, True)


def _decisions(journal: Path) -> Iterator[dict[str, Any]]:
    # The journal's whole lines, a line that is not JSON refused by its number.
    with open(journal, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.endswith(b"\n"):
                return
            try:
                yield orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise _not_a_decision(journal, number) from None


def _how_many(count: int) -> str:
    return "1 decision is" if count == 1 else f"{count:,} decisions are"
