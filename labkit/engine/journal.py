"""The decision journal: ``decisions.jsonl``, one line per bar decided, appended, never rewritten.

Every line is built here, by `LineEncoder`, and nowhere else. Most bars of a replay are HOLDs
that nothing blocked, so their lines differ only in a few numbers: those are filled into bytes
prepared once, and every other line is a dict encoded by orjson. Both give the same bytes, in the
order of `FIELDS` (a test checks it).

A line has one fill (``fill``) at most, except the bar an entry filled at whose range then reached
the new position's stop or take-profit: that line also has ``exit_fill``, right after ``fill``.
Only such a line has the field, so every other line is exactly what it was before it existed;
`line_fills` gives a line's fills in the order they happened.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from labkit._io import iter_lines, last_line, named, open_append, repair_torn_tail
from labkit.home import as_path
from labkit.timeutil import iso_ms

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = [
    "COLUMNS",
    "ALREADY_FLAT",
    "EXIT_FILL",
    "ALREADY_LONG",
    "FIELDS",
    "JournalDamage",
    "JournalError",
    "PASSED",
    "SCHEMA",
    "JournalWriter",
    "LineEncoder",
    "checked_lines",
    "first_gap",
    "journal_damage",
    "iter_lines",
    "last_line",
    "line_fills",
    "read_journal",
    "repair_torn_tail",
]

SCHEMA = 1
FIELDS = (
    "schema",
    "session",
    "seq",
    "ts",
    "decided_at",
    "mode",
    "symbol",
    "timeframe",
    "price",
    "proposed",
    "action",
    "confidence",
    "gate_trace",
    "rejection_reason",
    "fill",
    "position",
    "cash",
    "equity",
    "model",
    "correlation_id",
)
# The one field only some lines have: the exit filled on the range of the bar whose open filled the
# entry (`fill`). It follows `fill`.
EXIT_FILL = "exit_fill"
# The trace of a decision no gate blocked; the engine passes this very object for the common case.
PASSED: Mapping[str, Any] = {"stage": "passed", "reason": None, "detail": {}}
# An exit proposed while flat: long-only, nothing to do, and nothing blocked it.
ALREADY_FLAT: Mapping[str, Any] = {"stage": "passed", "reason": "already_flat", "detail": {}}
ALREADY_LONG: Mapping[str, Any] = {"stage": "passed", "reason": "already_long", "detail": {}}
_dumps = functools.partial(orjson.dumps, option=orjson.OPT_APPEND_NEWLINE)
# The template slots a run of quiet lines shares: the decision time, and the book.
_STAMP_SLOT = b'"decided_at":"%b.%03dZ"'
_BOOK_SLOT = b'"position":%b,"cash":%b'


class LineEncoder:
    """Build the journal lines of one session run: fields that never change are encoded once."""

    def __init__(self, session: str, mode: str, symbol: str, timeframe: str, model: str, run_id: str) -> None:
        self.session, self.mode, self.symbol, self.timeframe = session, mode, symbol, timeframe
        self.model, self.run_id = model, run_id
        self.hold_template = self._template("HOLD", PASSED)
        self.flat_template = self._template("SELL", ALREADY_FLAT)

    def _template(self, proposed: str, trace: Mapping[str, Any]) -> bytes:
        # The bytes of a line whose action is HOLD, with no fill, for one proposal and trace. Slots:
        # seq, ts without its Z, decided_at up to the second, its milliseconds, then price,
        # confidence, position, cash and equity as `number` encodes them, and seq again for the
        # correlation id.
        head = orjson.dumps({"schema": SCHEMA, "session": self.session})[:-1]
        market = orjson.dumps({"mode": self.mode, "symbol": self.symbol, "timeframe": self.timeframe})[1:-1]
        rejection = None if trace["stage"] == "passed" else trace["reason"]
        judged = orjson.dumps({"gate_trace": trace, "rejection_reason": rejection, "fill": None})[1:-1]
        tail = orjson.dumps({"model": self.model})[1:-1]
        return (
            head.replace(b"%", b"%%")
            + b',"seq":%d,"ts":"%bZ","decided_at":"%b.%03dZ",'
            + market.replace(b"%", b"%%")
            + b',"price":%b,"proposed":"'
            + proposed.encode()
            + b'","action":"HOLD","confidence":%b,'
            + judged.replace(b"%", b"%%")
            + b',"position":%b,"cash":%b,"equity":%b,'
            + tail.replace(b"%", b"%%")
            + b',"correlation_id":"'
            + self.run_id.encode().replace(b"%", b"%%")
            + b'-%d"}\n'
        )

    def line(
        self,
        seq: int,
        ts: str,
        decided_at: str,
        price: float | None,
        proposed: str,
        action: str,
        confidence: float | None,
        trace: Mapping[str, Any],
        fill: Mapping[str, Any] | None,
        position: float,
        cash: float,
        equity: float,
        exit_fill: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Return one decision line as a dict, in schema order (`exit_fill` only when given)."""
        line = {
            "schema": SCHEMA,
            "session": self.session,
            "seq": seq,
            "ts": ts,
            "decided_at": decided_at,
            "mode": self.mode,
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "price": price,
            "proposed": proposed,
            "action": action,
            "confidence": confidence,
            "gate_trace": trace,
            "rejection_reason": None if trace["stage"] == "passed" else trace["reason"],
            "fill": fill,
            "position": position,
            "cash": cash,
            "equity": equity,
            "model": self.model,
            "correlation_id": f"{self.run_id}-{seq}",
        }
        if exit_fill is None:
            return line
        items = list(line.items())
        at = FIELDS.index("fill") + 1
        return dict([*items[:at], (EXIT_FILL, exit_fill), *items[at:]])

    def encode(self, line: Mapping[str, Any]) -> bytes:
        """Return a line as the bytes written to the journal."""
        return _dumps(line)

    def quiet_lines(
        self,
        first_seq: int,
        flat: Sequence[bool],
        ts: Sequence[bytes],
        prices: Sequence[bytes],
        confidences: Sequence[bytes],
        position: bytes,
        cash: bytes,
        equities: Sequence[bytes],
        clock: Callable[[], int],
    ) -> list[bytes]:
        """Return the lines of a run of bars that held without a block, all with one book.

        A bar's line is a HOLD's (`hold_template`), or an exit's proposed while flat (`flat`
        True, `flat_template`); `ts` holds each bar's open without its Z (``2026-01-05T00:00:00``),
        `prices`, `confidences` and `equities` each bar's number already encoded (`number`); seqs
        count up from `first_seq`. The clock is read once per 256 lines: a replay writes them
        microseconds apart.
        """
        out: list[bytes] = []
        book = b'"position":' + position + b',"cash":' + cash
        for lo in range(0, len(ts), 256):
            hi = min(lo + 256, len(ts))
            ms = clock()
            # What every line of these 256 shares is written into their templates once.
            stamp = b'"decided_at":"' + iso_ms(ms).encode() + b'"'
            hold, exit_ = (
                t.replace(_STAMP_SLOT, stamp).replace(_BOOK_SLOT, book)
                for t in (self.hold_template, self.flat_template)
            )
            seqs = range(first_seq + lo, first_seq + hi)
            out += [
                (exit_ if f else hold) % (q, t, p, c, e, q)
                for f, q, t, p, c, e in zip(
                    flat[lo:hi],
                    seqs,
                    ts[lo:hi],
                    prices[lo:hi],
                    confidences[lo:hi],
                    equities[lo:hi],
                    strict=True,
                )
            ]
        return out

    def hold_passed(
        self,
        seq: int,
        ts: str,
        decided_at: str,
        price: float,
        confidence: float | None,
        position: float,
        cash: float,
        equity: float,
    ) -> bytes:
        """Return the bytes of a HOLD no gate blocked, filled into `hold_template`."""
        second, millis = decided_at[:-5].encode(), int(decided_at[-4:-1])
        values = (number(price), number(confidence), number(position), number(cash), number(equity))
        return self.hold_template % (seq, ts.removesuffix("Z").encode(), second, millis, *values, seq)


def line_fills(line: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Return the fills of one journal line in the order they happened: at the open, then on the range.

    Examples
    --------
    >>> line_fills({"fill": None})
    []
    >>> [f["side"] for f in line_fills({"fill": {"side": "BUY"}, "exit_fill": {"side": "SELL"}})]
    ['BUY', 'SELL']
    """
    return [fill for fill in (line.get("fill"), line.get(EXIT_FILL)) if fill]


def number(value: float | None) -> bytes:
    """Return a number as orjson writes it (None and NaN as null)."""
    return b"null" if value is None or value != value else orjson.dumps(value)


class JournalWriter:
    """Append decision lines to a journal file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = open_append(path)  # cuts a torn last line, with a warning
        self.size = self._file.tell()  # bytes in the file; final once closed
        # The engine calls this directly in its hot loop: a C function, no Python frame between.
        self.write_bytes = self._file.write

    def write(self, line: Mapping[str, Any]) -> None:
        self.write_bytes(_dumps(line))

    def offset(self) -> int:
        """Return the journal's size once everything written is flushed."""
        self._file.flush()
        return self._file.tell()

    def flush(self, fsync: bool = False) -> None:
        try:
            self._file.flush()
            if fsync:
                os.fsync(self._file.fileno())
        except OSError as exc:  # a full disk: say which file
            raise named(exc, self.path) from None

    def close(self) -> None:
        """Flush the journal to disk (fsync) and close it; `size` is then its final length."""
        if not self._file.closed:
            self.flush(fsync=True)
            self.size = self._file.tell()
            self._file.close()


def first_gap(path: Path, symbols: Sequence[str] = ()) -> tuple[int, int, int] | None:
    """Return (line, seq expected, seq found) at the journal's first damaged line (`journal_damage`).

    None when every line is a whole decision and follows the one before, from 0. A line that is not
    a decision (not JSON, a field missing or of the wrong type) has -1 as its found seq.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "d.jsonl"
    >>> _ = p.write_bytes(b'{"seq":0, "cash"\\n')
    >>> first_gap(p)
    (1, 0, -1)
    """
    damage = journal_damage(path, symbols)
    return None if damage is None else (damage.line, damage.expected, damage.found)


@dataclass(frozen=True)
class JournalDamage:
    """The first line of a journal that is not the whole decision its place calls for."""

    line: int  # counted from 1
    expected: int  # the seq due on that line
    found: int  # the seq it holds; -1 when it is not a decision line at all
    problem: str  # what is wrong with it, in words


def journal_damage(path: Path, symbols: Sequence[str] = ()) -> JournalDamage | None:
    """Return the journal's first damaged line, or None when the whole journal is sound.

    A torn last line (a kill mid-write) is not damage: the next append cuts it. See `checked_lines`.
    """
    try:
        for _ in checked_lines(path, symbols):
            pass
    except JournalError as exc:
        return exc.damage
    return None


def checked_lines(path: Path, symbols: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
    """Yield every whole line of the journal, in order, each checked to be the decision due there.

    One streaming pass, quicker than `read_journal` loading the same lines. Every line must be JSON
    holding exactly the schema's fields (`exit_fill` allowed), of their types (numbers for the
    book, objects for ``gate_trace`` and ``fill``, a known ``action``), schema `SCHEMA`, and follow
    the line before it: ``seq`` one more (none lost, none repeated), ``ts`` later, the same
    ``session``, ``symbol`` and ``timeframe``, the same ``cash`` and ``position`` unless a fill
    came between, and ``equity`` exactly ``cash + position x price``. A torn last line (no
    newline) is left out, as the next append cuts it. What this cannot see: a byte changed in a
    text, a price or a confidence that still reads as one.

    A book's journal (`symbols`, more than one, in the book's order) has a line per time and symbol:
    the symbols in that order at each time, ``ts`` later only when the first symbol comes round
    again, each symbol's ``position`` unchanged since its own line before unless a fill came
    between, the book's ``cash`` likewise, and ``equity`` the cash plus every position at its close
    of that time (checked once the time's last symbol is read; to a relative 1e-9, as the engine
    keeps the sum as fills move it).

    Raises
    ------
    JournalError
        At the first damaged line; its `damage` says which line, the seqs and the problem.
    """
    if not path.exists():
        return
    loads, whole, whole_exit = orjson.loads, _FIELD_SET, _FIELD_SET_EXIT
    numbers, prices, fills, actions = _NUMBERS, _PRICE_TYPES, _FILL_TYPES, _ACTIONS
    expected, previous = 0, _NO_LINE
    book = _BookCheck(symbols) if len(symbols) > 1 else None
    unlike = book.unlike if book is not None else _unlike
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if raw[-1:] != b"\n":
                return  # a torn tail, cut on the next append
            try:
                line = loads(raw)
            except orjson.JSONDecodeError as exc:
                raise _damaged(path, number, expected, -1, f"not a decision line (not JSON: {exc})") from None
            # The common case costs a few comparisons; only a damaged line pays for saying why.
            if (
                type(line) is not dict
                or (line.keys() != whole and line.keys() != whole_exit)
                or line["seq"] != expected
                or type(line["seq"]) is not int
                or type(line["position"]) not in numbers
                or type(line["cash"]) not in numbers
                or type(line["equity"]) not in numbers
                or type(line["price"]) not in prices
                or line["action"] not in actions
                or type(line["gate_trace"]) is not dict
                or type(line["fill"]) not in fills
                or type(line["ts"]) is not str
                or line["schema"] != SCHEMA
                or unlike(line, previous)
            ):
                found, problem = _what_is_wrong(line, expected, previous, book)
                raise _damaged(path, number, expected, found, problem)
            previous = line
            expected += 1
            yield line


class _BookCheck:
    """What a book's journal must keep from line to line (`checked_lines` with symbols)."""

    def __init__(self, symbols: Sequence[str]) -> None:
        self.symbols = list(symbols)
        self.next = {s: self.symbols[(i + 1) % len(self.symbols)] for i, s in enumerate(self.symbols)}
        self.position: dict[str, float] = {}
        self.price: dict[str, float] = {}
        self.time: list[tuple[dict[str, Any], dict[str, float]]] = []  # the lines of the time so far

    def unlike(self, line: dict[str, Any], previous: dict[str, Any]) -> bool:
        return bool(self.why_not(line, previous))

    def why_not(self, line: dict[str, Any], previous: dict[str, Any]) -> str:
        # Why `line` cannot follow `previous` in a book (empty when it can); remembers it when it can.
        symbol, filled = line["symbol"], line["fill"] is not None or EXIT_FILL in line
        first = previous is _NO_LINE
        due = self.symbols[0] if first else self.next.get(previous["symbol"])
        if symbol != due:
            return f"symbol {symbol!r} where {due!r} was due (the book's symbols in order at each time)"
        new_time = symbol == self.symbols[0]
        if not first and (line["ts"] <= previous["ts"] if new_time else line["ts"] != previous["ts"]):
            return (
                f"ts {line['ts']} does not follow the line before's {previous['ts']} "
                "(a time's symbols, then the next time)"
            )
        if not first:
            for name in ("session", "timeframe"):
                if line[name] != previous[name]:
                    return (
                        f"{name} {line[name]!r} where the line before has {previous[name]!r} "
                        "(one journal, one book)"
                    )
            if not filled and line["cash"] != previous["cash"]:
                return (
                    f"cash {line['cash']!r} where the line before left {previous['cash']!r}, "
                    "with no fill between"
                )
        if not filled and symbol in self.position and line["position"] != self.position[symbol]:
            return (
                f"position {line['position']!r} where {symbol}'s line before left {self.position[symbol]!r}, "
                "with no fill between"
            )
        if new_time:
            self.time = []
        self.position[symbol] = line["position"]
        if line["price"] is not None:
            self.price[symbol] = line["price"]
        self.time.append((line, dict(self.position)))
        if symbol == self.symbols[-1]:
            # Every symbol's close of the time is known: each line marked the book at them.
            for one, held in self.time:
                marked = one["cash"] + sum(units * self.price.get(s, 0.0) for s, units in held.items())
                if abs(one["equity"] - marked) > 1e-9 * max(1.0, abs(marked)):
                    return (
                        f"equity {one['equity']!r} of the {one['symbol']} line (seq {one['seq']}) is not "
                        f"cash + every position x its close at {one['ts']} ({marked!r})"
                    )
        return ""


_FIELD_SET = frozenset(FIELDS)
_FIELD_SET_EXIT = _FIELD_SET | {EXIT_FILL}
_NUMBERS = frozenset((int, float))
_PRICE_TYPES = _NUMBERS | {type(None)}  # no price: a bar the source could not deliver
_FILL_TYPES = frozenset((dict, type(None)))
_ACTIONS = frozenset(("BUY", "SELL", "HOLD"))
# What the first line follows: any first line is later, and its book needs no fill to differ.
_NO_LINE: dict[str, Any] = {"ts": ""}


def _unlike(line: dict[str, Any], previous: dict[str, Any]) -> bool:
    # True when `line` cannot follow `previous` (a line whose own types were checked).
    if previous is _NO_LINE:
        return line["price"] is not None and line["equity"] != line["cash"] + line["position"] * line["price"]
    return (
        line["ts"] <= previous["ts"]
        or line["session"] != previous["session"]
        or line["symbol"] != previous["symbol"]
        or line["timeframe"] != previous["timeframe"]
        or (
            line["fill"] is None
            and EXIT_FILL not in line
            and (line["cash"] != previous["cash"] or line["position"] != previous["position"])
        )
        or (line["price"] is not None and line["equity"] != line["cash"] + line["position"] * line["price"])
    )


def _what_is_wrong(
    line: Any, expected: int, previous: dict[str, Any], book: _BookCheck | None = None
) -> tuple[int, str]:
    # The seq a damaged line holds (-1 when it is no decision line) and its problem, in words.
    if type(line) is not dict:
        return -1, f"not a decision line (a JSON {type(line).__name__}, not an object)"
    missing = [name for name in FIELDS if name not in line]
    unknown = [name for name in line if name not in _FIELD_SET_EXIT]
    if missing or unknown:
        said = [
            f"missing {', '.join(missing)}" if missing else "",
            f"unknown {', '.join(unknown)}" if unknown else "",
        ]
        return -1, f"not a decision line ({'; '.join(filter(None, said))})"
    seq = line["seq"]
    if type(seq) is not int:
        return -1, f"not a decision line (seq is {seq!r}, not a whole number)"
    for name in ("position", "cash", "equity", "price"):
        if type(line[name]) not in (_PRICE_TYPES if name == "price" else _NUMBERS):
            return -1, f"not a decision line ({name} is {line[name]!r}, not a number)"
    if line["action"] not in _ACTIONS:
        return -1, f"not a decision line (action {line['action']!r} is not BUY, SELL or HOLD)"
    if type(line["gate_trace"]) is not dict or type(line["fill"]) not in _FILL_TYPES:
        return -1, "not a decision line (gate_trace or fill is not an object)"
    if type(line["ts"]) is not str:
        return -1, f"not a decision line (ts is {line['ts']!r}, not a time)"
    if seq != expected:
        how = "a line lost or out of order" if seq > expected else "a line repeated or out of order"
        return seq, f"seq {seq} where {expected} was due ({how})"
    if line["schema"] != SCHEMA:
        return seq, f"schema {line['schema']!r}: this labkit reads journal schema {SCHEMA}"
    return seq, book.why_not(line, previous) if book is not None else _does_not_follow(line, previous)


def _does_not_follow(line: dict[str, Any], previous: dict[str, Any]) -> str:
    # Why a line whose fields are all there, of their types, cannot follow the line before it.
    if line["ts"] <= previous["ts"]:
        return f"ts {line['ts']} is not after the line before's {previous['ts']} (bars are decided in order)"
    filled = line["fill"] is not None or EXIT_FILL in line
    for name in ("session", "symbol", "timeframe", "cash", "position"):
        if previous is _NO_LINE or line[name] == previous[name] or (filled and name in ("cash", "position")):
            continue
        if name in ("cash", "position"):
            return (
                f"{name} {line[name]!r} where the line before left {previous[name]!r}, with no fill between"
            )
        return f"{name} {line[name]!r} where the line before has {previous[name]!r} (one journal, one market)"
    marked = line["cash"] + line["position"] * line["price"]
    return f"equity {line['equity']!r} is not cash + position x price ({marked!r})"


def _damaged(path: Path, number: int, expected: int, found: int, problem: str) -> JournalError:
    damage = JournalDamage(number, expected, found, problem)
    error = JournalError(f"{path} line {number}: {problem}")
    error.damage = damage
    return error


# How duckdb reads each field. `fill` stays JSON text: fills are rare, and their keys may grow.
_SCAN_TYPES: dict[str, Any] = {
    "schema": "INTEGER",
    "session": "VARCHAR",
    "seq": "BIGINT",
    "ts": "VARCHAR",
    "decided_at": "VARCHAR",
    "mode": "VARCHAR",
    "symbol": "VARCHAR",
    "timeframe": "VARCHAR",
    "price": "DOUBLE",
    "proposed": "VARCHAR",
    "action": "VARCHAR",
    "confidence": "DOUBLE",
    "gate_trace": {"stage": "VARCHAR", "reason": "VARCHAR", "detail": "JSON"},
    "rejection_reason": "VARCHAR",
    "fill": "JSON",
    EXIT_FILL: "JSON",
    "position": "DOUBLE",
    "cash": "DOUBLE",
    "equity": "DOUBLE",
    "model": "VARCHAR",
    "correlation_id": "VARCHAR",
}
FILL_KEYS = ("side", "units", "price", "fee", "slippage_cost", "order_seq", "pnl")
# Every column `read_journal` can return, in its order.
COLUMNS = (
    *FIELDS,
    EXIT_FILL,
    "stage",
    "reason",
    *(f"fill_{key}" for key in FILL_KEYS),
    *(f"{EXIT_FILL}_{key}" for key in FILL_KEYS),
)


class JournalError(ValueError):
    """A complete journal line that is not a decision line (`damage` says where, when known)."""

    damage: JournalDamage | None = None


def read_journal(path: str | Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Return the journal as a frame: one row per complete decision line, in file order.

    ``ts`` and ``decided_at`` are tz-aware UTC. ``gate_trace``, ``fill`` and ``exit_fill`` hold
    each line's dicts (None without one; ``exit_fill`` is the exit that filled on the entry's own
    bar); they are also flattened to ``stage``, ``reason``, ``fill_*`` and ``exit_fill_*``
    columns. `columns` picks from `COLUMNS`: a block tally over a million lines needs four of them
    and loads in a third of the time the whole frame takes. A torn last line (a crash mid-write) is
    left out, as the next append cuts it; any other line that is not a decision raises
    `JournalError` naming its line number.
    """
    wanted = list(COLUMNS if columns is None else columns)
    unknown = [name for name in wanted if name not in COLUMNS]
    if unknown:
        raise ValueError(f"columns: {', '.join(unknown)} not in the journal; allowed: {', '.join(COLUMNS)}")
    path = as_path(path, "path")  # a notebook passes a string
    if not path.exists() or path.stat().st_size == 0:
        return _empty_frame(wanted)
    table = _scan(path, wanted)
    _check_lines(path, table)
    if table.num_rows == 0:
        return _empty_frame(wanted)
    return _decode(table, wanted)[wanted]


def _scan(path: Path, wanted: list[str], exact: bool = False) -> pa.Table:
    # duckdb parses the lines on every core, straight into columns. A journal whose every line is
    # whole takes the fastest road, read_json; one with a torn tail is split into lines first (a
    # CSV of one column: no quoting, and JSON never holds a raw \x01) so that the tail can be left
    # out. When either stumbles on a bad line, the exact road parses line by line, keeping a NULL
    # seq in the bad line's place for _check_lines to name.
    import duckdb

    fields = {"seq", *wanted}
    if fields & {"stage", "reason"}:
        fields.add("gate_trace")
    for fill in ("fill", EXIT_FILL):
        if any(name.startswith(f"{fill}_") for name in fields):
            fields.add(fill)
    types = {name: kind for name, kind in _SCAN_TYPES.items() if name in fields}
    whole = not exact and _ends_with_newline(path)
    if whole:
        source = f"read_json($path, format='newline_delimited', columns={_duck_columns(types)}) AS j"
    else:
        guard = "json_valid(line)" if exact else "suffix(line, '}')"
        source = (
            f"(SELECT CASE WHEN {guard} THEN json_transform(line, $spec) END AS j"
            " FROM read_csv($path, columns={'line': 'VARCHAR'}, delim='\\x01', quote='', escape='',"
            " header=false, auto_detect=false, new_line='\\n', max_line_size=16777216))"
        )
    query = f"SELECT {', '.join(_projection(wanted))} FROM {source}"
    params = {"path": ""} if whole else {"path": "", "spec": orjson.dumps(types).decode()}
    with tempfile.TemporaryDirectory(prefix="labkit-journal-") as tmp:
        # duckdb reads * ? [ in a file name as a glob: hand it a plain link instead.
        plain = Path(tmp) / "decisions.jsonl"
        plain.symlink_to(path.resolve())
        params["path"] = str(plain)
        with duckdb.connect() as con:
            try:
                table = con.sql(query, params=params).to_arrow_table()
            except duckdb.Error:
                if exact:
                    raise
                return _scan(path, wanted, exact=True)
    return table if whole else table.slice(0, table.num_rows - (0 if _ends_with_newline(path) else 1))


def _duck_columns(types: Mapping[str, Any]) -> str:
    def kind(value: Any) -> str:
        if isinstance(value, Mapping):
            return "STRUCT(" + ", ".join(f"{k} {kind(v)}" for k, v in value.items()) + ")"
        return str(value)

    return "{" + ", ".join(f"'{name}': '{kind(value)}'" for name, value in types.items()) + "}"


def _projection(wanted: list[str]) -> list[str]:
    select = ["j.seq AS seq"]
    for name in wanted:
        if name in ("stage", "reason"):
            select.append(f"j.gate_trace.{name} AS {name}")
        elif name == "gate_trace":
            select += ["j.gate_trace.stage AS stage", "j.gate_trace.reason AS reason"]
            select.append("CAST(j.gate_trace.detail AS VARCHAR) AS _detail")
        elif name in ("fill", EXIT_FILL):
            select.append(f"CAST(j.{name} AS VARCHAR) AS {name}")
        elif name.startswith(("fill_", f"{EXIT_FILL}_")):
            fill = EXIT_FILL if name.startswith(f"{EXIT_FILL}_") else "fill"
            key = name.removeprefix(f"{fill}_")
            kind = "VARCHAR" if key == "side" else "BIGINT" if key == "order_seq" else "DOUBLE"
            select.append(f"TRY_CAST(j.{fill}->>'$.{key}' AS {kind}) AS {name}")
        elif name != "seq":
            select.append(f'j."{name}" AS "{name}"')
    return list(dict.fromkeys(select))


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


def _check_lines(path: Path, table: pa.Table) -> None:
    import pyarrow.compute as pc

    seq = table.column("seq")
    if seq.null_count == 0:
        return
    number = int(pc.index(pc.is_null(seq), True).as_py()) + 1
    with open(path, "rb") as handle:
        raw = next(line for n, line in enumerate(handle, start=1) if n == number)
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise JournalError(f"{path}: line {number} is not JSON ({exc})") from None
    raise JournalError(
        f"{path}: line {number} is not a decision line (a field is missing or of the wrong type)"
    )


def _decode(table: pa.Table, wanted: list[str]) -> pd.DataFrame:
    import pandas as pd

    objects = {
        name: table.column(name).to_pylist()
        for name in ("_detail", "fill", EXIT_FILL)
        if name in table.schema.names
    }
    frame = table.drop_columns(list(objects)).to_pandas()
    for name in ("ts", "decided_at"):
        if name in wanted:
            frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601")
    if "gate_trace" in wanted:
        stages, reasons = table.column("stage").to_pylist(), table.column("reason").to_pylist()
        details = [orjson.loads(text) if text else {} for text in objects["_detail"]]
        frame["gate_trace"] = [
            {"stage": stage, "reason": reason, "detail": detail}
            for stage, reason, detail in zip(stages, reasons, details, strict=True)
        ]
    for fill in ("fill", EXIT_FILL):
        if fill in objects:
            frame[fill] = [orjson.loads(text) if text else None for text in objects[fill]]
    return frame


def _empty_frame(wanted: list[str]) -> pd.DataFrame:
    import pandas as pd

    kinds = {"ts": "datetime64[ns, UTC]", "decided_at": "datetime64[ns, UTC]"}
    return pd.DataFrame({name: pd.Series(dtype=kinds.get(name, "object")) for name in wanted})
