"""The engine: one decision per bar, the same code for backtests, shadow and paper sessions.

For each new bar, in order: fill the order decided at the previous bar at this bar's open, roll
the UTC day, mark the book at the close, ask the strategy for a proposal, run the gate chain, and
write the journal line. Replays hand it many bars at once and live sessions one at a time; the
decisions are identical because a strategy's proposal for bar t depends only on bars up to t.

Every gate is asked about every proposal it declares in ``applies_to``. A gate whose verdict reads
only bar-level facts (the `data` gate) may answer for a whole run of bars at once
(`Gate.check_bars`); when every gate that applies to HOLD answers that way, a HOLD bar needs no
context of its own. That is what lets a replay decide hundreds of thousands of bars a second.

Exits the engine enforces (the `risk` section: stop-loss, take-profit, trailing and time stops;
`labkit.engine.exits`) are checked on every bar a position is held through, before the close is
marked: the entry's own bar too, whose range comes after the fill at its open (its line then holds
both fills, `fill` and `exit_fill`). The levels live in the book (`Portfolio`), so a resumed
session checks them like a replay.

Without such exits, a bar with no order waiting for its open, no block and no proposal (or only
an exit while flat) changes nothing but the mark. A replay then steps only through the bars where
something can happen and marks the quiet runs between them at once (their lines, when journaled,
are filled into prepared bytes in one go); every line and figure is the same as stepping bar by
bar, which a live bar and a replay with exits still do.
"""

from __future__ import annotations

import math
import secrets
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from itertools import compress, repeat
from operator import is_not
from typing import Any

import numpy as np
import orjson
import pandas as pd

from labkit.data.bars import ts_ms
from labkit.engine.exits import arm, enforce, entry_units
from labkit.engine.journal import ALREADY_FLAT, ALREADY_LONG, PASSED, JournalWriter, LineEncoder, number
from labkit.engine.observer import Observer
from labkit.engine.portfolio import Portfolio
from labkit.engine.settings import EngineSettings
from labkit.features.definitions import atr as average_true_range
from labkit.features.featureset import bar_columns
from labkit.gates.base import BarFacts, Block, DecisionContext, Gate, run_gates
from labkit.strategies.base import Strategy
from labkit.strategies.sides import BUY, HOLD, SELL, SIDE_CODE, SIDE_NAME
from labkit.timeutil import DAY_MS, iso_ms, iso_s, now_ms

FLUSH_EVERY = 4096
SLICE_BARS = 65_536


class Engine:
    """Decide bars one by one against a portfolio, optionally journaling every decision."""

    # Whether a replay may mark quiet runs at once; False steps every bar (the tests compare both).
    skip_quiet = True

    def __init__(
        self,
        settings: EngineSettings,
        strategy: Strategy,
        gates: Sequence[Gate],
        portfolio: Portfolio,
        journal: JournalWriter | None = None,
        clock: Callable[[], int] = now_ms,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.strategy = strategy
        self.gates = list(gates)
        # Each proposal's chain: only the gates that declared they judge it, in chain order.
        self.chains = {side: [g for g in self.gates if side in g.applies_to] for side in (BUY, SELL, HOLD)}
        self.portfolio = portfolio
        self.journal = journal
        self.clock = clock
        self.on_event = on_event  # called with the journal line of every order, fill or block
        self.observer = observer if observer is not None else Observer()
        self.run_id = secrets.token_hex(4)
        self.settings = settings
        self._history = pd.DataFrame()
        self.equity: list[np.ndarray] = []  # per-bar equity at the close, one array per call

    @property
    def settings(self) -> EngineSettings:
        return self._settings

    @settings.setter
    def settings(self, settings: EngineSettings) -> None:
        # A transition changes the mode mid-session: the lines from then on say so.
        self._settings = settings
        self.lines = LineEncoder(
            settings.session,
            settings.mode,
            settings.symbol,
            settings.timeframe,
            self.strategy.model_id,
            self.run_id,
        )

    @property
    def history(self) -> int:
        """Bars of history the engine keeps: the strategy's, and the ATR's when exits or sizing use it."""
        return max(self.strategy.history, self.settings.risk.atr_bars)

    @property
    def warmup(self) -> int:
        """Bars needed before the first decision that may trade."""
        return max(self.strategy.warmup, self.settings.risk.atr_bars)

    def prime(self, history: pd.DataFrame) -> None:
        """Give the engine bars that were already decided, so a resumed session needs no warm-up."""
        self._history = history.iloc[-self.history :]

    def _absorb(self, bars: pd.DataFrame) -> None:
        # Bars already journaled (held as data_unavailable while the source was down) still belong
        # in the history the strategy looks back on once they arrive.
        window = pd.concat([self._history, bars]) if len(self._history) else bars
        window = window[~window.index.duplicated(keep="last")].sort_index()
        self._history = window.iloc[-self.history :]

    def unavailable(self, times: list[int], now: int) -> None:
        """Journal a HOLD for each due bar the source could not deliver (stage data, data_unavailable).

        There is no bar to judge, so no gate is asked: the `data` stage holds by definition.
        """
        port, journal = self.portfolio, self.journal
        price = float(self._history["close"].iloc[-1]) if len(self._history) else None
        for ts in times:
            if port.last_ts is not None and ts <= port.last_ts:
                continue
            detail: dict[str, Any] = {}
            if port.pending_side:
                # The exchange is down: the order decided on the last bar cannot be placed.
                detail["cancelled_order_seq"] = port.pending_seq
                port.pending_side, port.pending_seq, port.pending_reason = 0, -1, None
                port.pending_units = port.pending_atr = None
            port.roll_day(ts // DAY_MS)
            port.last_seq += 1
            port.last_ts = ts
            equity = port.cash + port.position * price if price is not None else port.last_equity
            port.last_equity = equity
            if journal is not None:
                trace = {"stage": "data", "reason": "data_unavailable", "detail": detail}
                line = self.lines.line(
                    port.last_seq,
                    iso_s(ts),
                    iso_ms(self.clock()),
                    price,
                    HOLD,
                    HOLD,
                    None,
                    trace,
                    None,
                    port.position,
                    port.cash,
                    equity,
                )
                journal.write(line)
                if self.on_event is not None:
                    self.on_event(line)
        if journal is not None:
            journal.flush()

    def process(self, bars: pd.DataFrame, now: int | None = None, source_ok: bool = True) -> int:
        """Decide every bar of `bars` (already-decided ones are skipped); return how many were new.

        `now` is the time the decisions are taken; None means "as each bar closes" (a replay).
        """
        port = self.portfolio
        if port.last_ts is not None and len(bars):
            decided = ts_ms(bars) <= port.last_ts
            if decided.any():
                self._absorb(bars[decided])
            bars = bars[~decided]
        if not len(bars):
            return 0
        window = pd.concat([self._history, bars]) if len(self._history) else bars
        offset = len(window) - len(bars)
        signals = self.strategy.propose(window)
        facts = dict(signals.facts)
        for gate in self.gates:
            facts.update(gate.prepare(window, signals.facts, offset))
        self._history = window.iloc[-self.history :]
        atr = None
        if self.settings.risk.atr_bars:
            cols = bar_columns(window)
            atr = average_true_range(cols["high"], cols["low"], cols["close"], self.settings.risk.atr_window)
        # Slices bound the memory a long replay needs for its journal text.
        for lo in range(0, len(bars), SLICE_BARS):
            hi = min(lo + SLICE_BARS, len(bars))
            self._decide(
                bars.iloc[lo:hi],
                offset + lo,
                signals.side[offset + lo : offset + hi],
                signals.confidence[offset + lo : offset + hi],
                signals.expected_edge[offset + lo : offset + hi],
                {name: values[offset + lo : offset + hi] for name, values in facts.items()},
                now,
                source_ok,
                None if atr is None else atr[offset + lo : offset + hi],
            )
        return len(bars)

    def _batch_answers(
        self,
        times: np.ndarray,
        offset: int,
        now: int | None,
        source_ok: bool,
        facts: Mapping[str, np.ndarray],
        side: np.ndarray,
    ) -> dict[str, list[Block | None]]:
        tf = self.settings.timeframe_ms
        close = times + tf
        bar_facts = BarFacts(
            ts=times,
            close_ts=close,
            now=close if now is None else np.full(len(times), now, dtype="int64"),
            bars_available=np.arange(offset + 1, offset + len(times) + 1),
            timeframe_ms=tf,
            bars_needed=self.warmup,
            source_ok=source_ok,
            signals=facts,
            proposed=side,
            halted=self.portfolio.halted,
            reduce_only=self.portfolio.reduce_only,
            halt_reason=self.portfolio.halt_reason,
        )
        answers = {}
        for gate in self.gates:
            answer = gate.check_bars(bar_facts)
            if answer is not None:
                answers[gate.name] = answer
        return answers

    def _settled(
        self, answers: Mapping[str, list[Block | None]], n: int
    ) -> tuple[dict[int, list[Block | None]], dict[int, list[Block | None]]]:
        # When every gate judging a proposal answered for the whole run, that proposal needs no
        # context of its own (`settled`): HOLDs always (data), exits too (data alone judges them),
        # entries when no gate but such ones judges them (gates off). Otherwise the gates at the
        # head of the chain that answered may already refuse a bar (`ahead`): halt, data, model.
        settled: dict[int, list[Block | None]] = {}
        ahead: dict[int, list[Block | None]] = {}
        merged: dict[tuple[str, ...], list[Block | None]] = {}
        for name in (HOLD, SELL, BUY):
            chain = self.chains[name]
            head = 0
            while head < len(chain) and chain[head].name in answers:
                head += 1
            if not head and chain:
                continue
            key = tuple(g.name for g in chain[:head])
            if key not in merged:
                blocks: list[Block | None] = [None] * n
                for gate in reversed(chain[:head]):  # the first gate in chain order wins
                    answer = answers[gate.name]
                    for i in _refused(answer):
                        blocks[i] = answer[i]
                merged[key] = blocks
            (settled if head == len(chain) else ahead)[SIDE_CODE[name]] = merged[key]
        return settled, ahead

    def _steps(self, side: np.ndarray, held: list[int]) -> list[int]:
        # The bars where something can happen: a proposal, the open after one (its order fills
        # there), a HOLD a gate blocked, and the first bar when an order is already waiting.
        busy = side != 0
        busy[1:] |= side[:-1] != 0
        busy[held] = True
        if self.portfolio.pending_side:
            busy[0] = True
        return np.flatnonzero(busy).tolist()

    def _quiet_steps(
        self, side: np.ndarray, settled: dict[int, list[Block | None]], held: list[int], at: np.ndarray
    ) -> tuple[list[bool], list[int], list[bool]]:
        # Of the bars a stepped replay visits (`at`): which would be quiet with nothing waiting (a
        # HOLD nothing blocked, or an exit nothing blocked, quiet while flat); for each, the
        # next one that is not (an entry, or a block: flat, the run may jump there); which are exits.
        proposed = side[at]
        blocked = np.zeros(len(side), dtype=bool)
        blocked[held] = True
        quiet = (proposed == 0) & ~blocked[at]
        if -1 in settled and settled[-1] is not settled[0]:
            blocked[:] = False
            blocked[_refused(settled[-1])] = True
        if -1 in settled:
            quiet |= (proposed == -1) & ~blocked[at]
        loud = np.append(np.flatnonzero(~quiet), len(at))
        flat_to = loud[np.searchsorted(loud, np.arange(len(at)))]
        return quiet.tolist(), flat_to.tolist(), (proposed == -1).tolist()

    def _decide(
        self,
        bars: pd.DataFrame,
        offset: int,
        side: np.ndarray,
        conf: np.ndarray,
        edge: np.ndarray,
        facts: Mapping[str, np.ndarray],
        now: int | None,
        source_ok: bool,
        atr: np.ndarray | None = None,
    ) -> None:
        s, port, journal, lines = self.settings, self.portfolio, self.journal, self.lines
        fee, slippage, position_frac = s.broker.fee, s.broker.slippage, s.risk.position_frac
        round_trip_cost = s.broker.round_trip_cost
        on_fill, on_verdict = self.observer.on_fill, self.observer.on_verdict
        day = port.day  # the book's UTC day, read often
        tf = s.timeframe_ms
        times = ts_ms(bars)
        n = len(times)
        cols = bar_columns(bars)  # one read of the frame: a column at a time costs 20 us each
        clock = self.clock
        on_event = self.on_event
        stamp_sec, stamp_prefix, stamp_bytes, stamp_block, ms = -1, "", b"", -1, 0
        day_arr = times // DAY_MS
        need = self.warmup
        exits = s.risk.exits
        risk_sized = s.risk.sizing == "risk"
        atrs = atr.tolist() if atr is not None else None  # built only when exits or sizing read it
        highs = cols["high"].tolist() if exits else []
        lows = cols["low"].tolist() if exits else []
        # Each open as the journal writes it, less the Z its templates add: numpy writes a whole
        # column of ISO seconds four times faster than it writes them as text with a suffix.
        ts_bytes = (
            times.astype("datetime64[ms]").astype("datetime64[s]").astype("S19").tolist()
            if journal is not None
            else None
        )
        hold_template, flat_template = lines.hold_template, lines.flat_template
        answers = self._batch_answers(times, offset, now, source_ok, facts, side)
        meta_size = facts.get("meta_size")  # a meta-labeled strategy's size factor per bar
        settled, ahead = self._settled(answers, n)
        # Stepping only the busy bars needs every quiet bar to be a HOLD that changes nothing but
        # the mark: no exit levels to check on the range, and no decision late enough to say so.
        fast = self.skip_quiet and not exits and now is None and 0 in settled
        held = _refused(settled[0]) if fast else []  # the bars whose HOLD a gate refuses
        steps = self._steps(side, held) if fast else []
        first_seq = port.last_seq + 1
        if fast:
            # What the loop reads, at the busy bars only (k counts them), and at the last bar of
            # the quiet run before each (and after the last).
            at = np.asarray(steps, dtype=np.intp)
            ends = np.append(at, n) - 1
            opens, closes = cols["open"][at].tolist(), cols["close"][at].tolist()
            sides, confs = side[at].tolist(), conf[at].tolist()
            days, times_list = day_arr[at].tolist(), times[at].tolist()
            run_close, run_day = cols["close"][ends].tolist(), day_arr[ends].tolist()
            run_top = _run_maxima(cols["close"], steps)
            # The book from each fill on, (bar, cash, position): only a fill changes it.
            marks = [(0, port.cash, port.position)]
            busy_lines: list[bytes] = []  # the lines of the bars stepped through, at busy_at
            busy_at: list[int] = []
            flat_at: list[int] = []  # exits proposed while flat inside quiet runs (their own line)
            calm, flat_to, exit_at = self._quiet_steps(side, settled, held, at)
            emit = busy_lines.append
            equity_out = np.empty(0)
        else:
            opens, closes = cols["open"].tolist(), cols["close"].tolist()
            sides, confs = side.tolist(), conf.tolist()
            days, times_list = day_arr.tolist(), times.tolist()
            emit = journal.write_bytes if journal is not None else None  # type: ignore[assignment]
            equity_out = np.empty(n)
        seq = port.last_seq
        cash, pos = port.cash, port.position
        peak = port.peak_equity
        # HOLD lines are filled into bytes prepared once; numbers encoded as `number` would.
        dumps = orjson.dumps
        pos_b = cash_b = b""
        pos_seen = cash_seen = math.nan
        quiet_from, quiet_top = 0, -math.inf  # the quiet run so far: its first bar, its highest close
        skip_to = 0
        for k, i in enumerate([*steps, n] if fast else range(n)):
            if fast:
                if k < skip_to:
                    continue
                if run_top[k] > quiet_top:
                    quiet_top = run_top[k]
                if i < n and calm[k] and not port.pending_side:
                    # Nothing waits for this open: a HOLD nothing blocked, or an exit nothing blocked
                    # while flat, changes nothing but the mark, and joins the quiet run.
                    if pos <= 0:
                        # Flat, every such bar up to the next entry or block joins it at once.
                        skip_to = flat_to[k]
                        end = steps[skip_to] if skip_to < len(steps) else n
                        top = float(cols["close"][i:end].max())
                        if top > quiet_top:
                            quiet_top = top
                        flat_at += compress(steps[k:skip_to], exit_at[k:skip_to])
                        continue
                    if not sides[k]:
                        if closes[k] > quiet_top:
                            quiet_top = closes[k]
                        continue
                if i > quiet_from:
                    # The quiet run ends: the book is the same on every bar of it, only the mark moved.
                    if run_day[k] != day:
                        # The run's last UTC day began at `first`: the day starts from the mark before it.
                        day = run_day[k]
                        first = quiet_from + int(np.searchsorted(day_arr[quiet_from:i], day))
                        if first:
                            port.last_equity = cash + pos * float(cols["close"][first - 1])
                        port.roll_day(day)
                    top = cash + pos * quiet_top  # a long book's highest mark is at the highest close
                    if top > peak:
                        peak = top
                    seq += i - quiet_from
                    port.last_equity = cash + pos * run_close[k]
                if i == n:
                    break
                quiet_from, quiet_top = i + 1, -math.inf
                busy_at.append(i)
            fill = exit_fill = None
            if port.pending_side:
                port.cash, port.position = cash, pos
                from_flat = pos <= 0
                bought = port.pending_side == 1
                fill = port.fill(
                    port.pending_side,
                    opens[k],
                    fee,
                    slippage,
                    position_frac,
                    port.pending_seq,
                    units=port.pending_units,
                )
                if fill is not None:
                    if exits and from_flat and bought:
                        arm(s, port, fill, port.pending_atr, seq + 1, days[k])
                    on_fill(times_list[k], fill)
                port.pending_side, port.pending_seq, port.pending_reason = 0, -1, None
                port.pending_units = port.pending_atr = None
                if exits and bought and fill is not None:
                    # The bar's low and high came after the fill at its open: a gap through the
                    # stop on the entry's own bar exits there, not a bar later.
                    exit_fill = enforce(s, port, opens[k], highs[k], lows[k], seq + 1)
                    if exit_fill is not None:
                        on_fill(times_list[k], exit_fill)
                cash, pos = port.cash, port.position
                if fast:
                    marks.append((i, cash, pos))
            elif exits and pos > 0:
                port.cash, port.position = cash, pos
                fill = enforce(s, port, opens[k], highs[k], lows[k], seq + 1)
                if fill is not None:
                    on_fill(times_list[k], fill)
                cash, pos = port.cash, port.position
            price = closes[k]
            if days[k] != day:
                day = days[k]
                port.roll_day(day)
            equity = cash + pos * price
            if equity > peak:
                peak = equity
            seq += 1
            proposed = sides[k]
            if proposed in settled:
                block = settled[proposed][i]
            elif proposed in ahead and ahead[proposed][i] is not None:
                block = ahead[proposed][i]
            else:
                port.cash, port.position, port.peak_equity = cash, pos, peak
                ctx = DecisionContext(
                    ts=times_list[k],
                    close_ts=times_list[k] + tf,
                    now=times_list[k] + tf if now is None else now,
                    timeframe_ms=tf,
                    price=price,
                    proposed=SIDE_NAME[proposed],
                    confidence=float(conf[i]),
                    expected_edge=float(edge[i]),
                    bars_available=offset + i + 1,
                    bars_needed=need,
                    source_ok=source_ok,
                    position=pos,
                    cash=cash,
                    equity=equity,
                    peak_equity=peak,
                    day_start_equity=port.day_start_equity,
                    trades_today=port.trades_today,
                    loss_streak=port.loss_streak,
                    halted=port.halted,
                    reduce_only=port.reduce_only,
                    halt_reason=port.halt_reason,
                    fee=fee,
                    slippage=slippage,
                    facts={name: float(values[i]) for name, values in facts.items()},
                    entry_units=entry_units(
                        s,
                        equity,
                        cash,
                        price,
                        atrs[i] if atrs is not None else math.nan,
                        confs[k],
                        float(meta_size[i]) if meta_size is not None else 1.0,
                    )
                    if proposed == 1
                    else math.nan,
                    risk_today=port.risk_today,
                    round_trip_cost=round_trip_cost,
                )
                known = {name: answer[i] for name, answer in answers.items()}
                block = run_gates(self.chains[ctx.proposed], ctx, known)
            if block is None:
                action, trace = proposed, PASSED
                if proposed == -1 and pos <= 0:
                    # Long-only: an exit signal while flat has nothing to do, and nothing blocked it.
                    action, trace = 0, ALREADY_FLAT
                elif proposed == 1 and risk_sized and pos > 0:
                    # A risk-sized position is entered once: adding would move its risk past the budget.
                    action, trace = 0, ALREADY_LONG
            else:
                action = 0
                trace = {"stage": block.stage, "reason": block.reason, "detail": dict(block.detail)}
            if block is not None or proposed == 1:
                on_verdict(times_list[k], SIDE_NAME[proposed], block)
            if action:
                port.pending_side, port.pending_seq = action, seq
                port.trades_today += action == 1  # a trade is a round trip: count entries
                if action == 1 and atrs is not None:
                    # The size and the ATR ride with the order (and in the journal, for a recovery).
                    a = atrs[i]
                    port.pending_atr = None if a != a else a
                    scale = float(meta_size[i]) if meta_size is not None else 1.0
                    units = entry_units(s, equity, cash, price, a, confs[k], scale) if risk_sized else None
                    port.pending_units = units
                    detail = (
                        {"atr": port.pending_atr}
                        if units is None
                        else {"units": units, "atr": port.pending_atr}
                    )
                    trace = {**trace, "detail": {**trace["detail"], **detail}}
            if now is not None and trace["stage"] == "passed" and now - times_list[k] - tf > tf:
                # Decided more than a bar after it closed (a catch-up): say so, with how late.
                late = round((now - times_list[k] - tf) / tf, 2)
                trace = {**trace, "detail": {**trace["detail"], "late_bars": late}}
            port.last_equity = equity
            if not fast:
                equity_out[i] = equity
            if emit is not None and ts_bytes is not None:
                c = confs[k]
                if now is not None or i >> 8 != stamp_block:
                    # A replay decides a bar every few microseconds: one reading of the clock
                    # stamps 256 lines (under a millisecond apart); a live bar reads its own.
                    ms, stamp_block = clock(), i >> 8
                if ms // 1000 != stamp_sec:  # the date part changes once a second: format it once
                    stamp_sec, stamp_prefix = ms // 1000, iso_ms(ms)[:-5]
                    stamp_bytes = stamp_prefix.encode()
                template = None
                if action == 0 and fill is None:
                    if trace is PASSED and proposed == 0:
                        template = hold_template
                    elif trace is ALREADY_FLAT:
                        template = flat_template
                if template is not None:
                    if pos != pos_seen:
                        pos_seen, pos_b = pos, number(pos)
                    if cash != cash_seen:
                        cash_seen, cash_b = cash, number(cash)
                    emit(
                        template
                        % (
                            seq,
                            ts_bytes[i],
                            stamp_bytes,
                            ms % 1000,
                            dumps(price),
                            b"null" if c != c else dumps(c),
                            pos_b,
                            cash_b,
                            dumps(equity),
                            seq,
                        )
                    )
                else:
                    line = lines.line(
                        seq,
                        ts_bytes[i].decode() + "Z",
                        f"{stamp_prefix}.{ms % 1000:03d}Z",
                        price,
                        SIDE_NAME[proposed],
                        SIDE_NAME[action],
                        None if c != c else float(c),
                        trace,
                        fill,
                        pos,
                        cash,
                        equity,
                        exit_fill,
                    )
                    emit(lines.encode(line))
                    if on_event is not None:
                        on_event(line)
                if not fast and seq % FLUSH_EVERY == 0:
                    journal.flush()  # type: ignore[union-attr]
        if fast:
            marks_at, marks_cash, marks_pos = (list(column) for column in zip(*marks, strict=True))
            lengths = np.diff([*marks_at, n])
            equity_out = np.repeat(marks_cash, lengths) + np.repeat(marks_pos, lengths) * cols["close"]
            if journal is not None and ts_bytes is not None:
                marks_by_bar = (marks_at, marks_cash, marks_pos)
                quiet = (cols["close"].tolist(), conf.tolist(), equity_out.tolist())
                self._write_runs(first_seq, (busy_at, busy_lines, flat_at), marks_by_bar, ts_bytes, quiet)
        port.cash, port.position, port.peak_equity = cash, pos, peak
        port.last_seq = seq
        port.last_ts = int(times[-1])
        self.equity.append(equity_out)
        if journal is not None:
            journal.flush()

    def _write_runs(
        self,
        first_seq: int,
        busy: tuple[list[int], list[bytes], list[int]],
        marks: tuple[list[int], list[float], list[float]],
        ts_bytes: list[bytes],
        quiet: tuple[list[float], list[float], list[float]],
    ) -> None:
        # The journal of a stepped slice, a line per bar: each quiet run's lines (a HOLD's, or an
        # exit's proposed while flat), then the busy bar after it.
        busy_at, busy_lines, flat_at = busy
        marks_at, marks_cash, marks_pos = marks
        split = _encoded
        prices, confidences, equities = (split(values) for values in quiet)
        flat = [False] * len(ts_bytes)
        for i in flat_at:
            flat[i] = True
        out: list[bytes] = []
        start = 0
        for k, i in enumerate([*busy_at, len(ts_bytes)]):
            if i > start:
                m = bisect_right(marks_at, start) - 1  # the book of the run: the last fill before it
                out += self.lines.quiet_lines(
                    first_seq + start,
                    flat[start:i],
                    ts_bytes[start:i],
                    prices[start:i],
                    confidences[start:i],
                    number(marks_pos[m]),
                    number(marks_cash[m]),
                    equities[start:i],
                    self.clock,
                )
            if k < len(busy_lines):
                out.append(busy_lines[k])
            start = i + 1
        assert self.journal is not None
        self.journal.write_bytes(b"".join(out))

    def equity_curve(self) -> np.ndarray:
        """Return the equity at every close decided so far in this process."""
        return np.concatenate(self.equity) if self.equity else np.empty(0)


def _refused(answers: list[Block | None]) -> list[int]:
    # The bars some block was given for, found at C speed: most answers are None.
    if answers.count(None) == len(answers):
        return []
    return list(compress(range(len(answers)), map(is_not, answers, repeat(None))))


def _encoded(values: list[float]) -> list[bytes]:
    # Each number as `number` encodes it (NaN as null), in one call: orjson writes a list's items
    # exactly as it writes each alone, and no number holds a comma.
    return orjson.dumps(values)[1:-1].split(b",") if values else []


def _run_maxima(close: np.ndarray, steps: list[int]) -> list[float]:
    # The highest close of each quiet run: before each busy bar, then after the last (-inf if empty).
    busy = np.asarray(steps, dtype=np.intp)
    starts = np.concatenate(([0], busy + 1))
    ends = np.concatenate((busy, [len(close)]))
    top = np.full(len(starts), -np.inf)
    some = starts < ends
    if some.any():
        bounds = np.empty(2 * int(some.sum()), dtype=np.intp)
        bounds[0::2], bounds[1::2] = starts[some], ends[some]
        # reduceat takes each max up to the next bound: runs at even places, the busy bars between.
        top[some] = np.maximum.reduceat(np.append(close, -np.inf), bounds)[0::2]
    return top.tolist()
