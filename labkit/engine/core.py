"""The engine: one decision per bar, the same code for backtests, shadow and paper sessions.

For each new bar, in order: fill the order decided at the previous bar at this bar's open, roll
the UTC day, mark the book at the close, ask the strategy for a proposal, run the gate chain, and
write the journal line. Replays hand it many bars at once and live sessions one at a time; the
decisions are identical because a strategy's proposal for bar t depends only on bars up to t.

Every gate is asked about every proposal it declares in ``applies_to``. A gate whose verdict reads
only bar-level facts (the `data` gate) may answer for a whole run of bars at once
(`Gate.check_bars`); when every gate that applies to HOLD answers that way, a HOLD bar needs no
context of its own. That is what lets a replay decide hundreds of thousands of bars a second.

Exits the engine enforces (the `risk` section: stop-loss, take-profit, trailing and time stops) are
checked on every bar with no fill at its open, before the close is marked: first at the open (a
gap through a level fills at the open), then on the range (a level fills at its price; a bar that
reaches both the stop and the take-profit is assumed to have hit the stop first, the worse case).
The levels live in the book (`Portfolio`), so a resumed session checks them like a replay.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd

from labkit.data.bars import ts_ms
from labkit.engine.journal import ALREADY_FLAT, ALREADY_LONG, PASSED, JournalWriter, LineEncoder, number
from labkit.engine.portfolio import Portfolio
from labkit.features.definitions import atr as average_true_range
from labkit.features.featureset import bar_columns
from labkit.gates.base import BarFacts, Block, DecisionContext, Gate, run_gates
from labkit.strategies.base import BUY, HOLD, SELL, SIDE_NAME, Strategy
from labkit.timeutil import DAY_MS, iso_ms, iso_s, now_ms

FLUSH_EVERY = 4096
SLICE_BARS = 65_536


@dataclass(frozen=True)
class EngineSettings:
    session: str
    mode: str  # backtest, shadow or paper
    symbol: str
    timeframe: str
    timeframe_ms: int
    fee: float
    slippage: float
    position_frac: float
    sizing: str = "all_in"  # or "risk"
    risk_per_trade: float = 0.01
    max_exposure: float = 1.0
    atr_window: int = 14
    stop_atr: float | None = None
    take_profit_atr: float | None = None
    trailing_atr: float | None = None
    max_bars: int | None = None
    confidence_floor: float | None = None  # a model's entry threshold: risk sizing scales above it

    @property
    def exits(self) -> bool:
        levels = (self.stop_atr, self.take_profit_atr, self.trailing_atr, self.max_bars)
        return any(v is not None for v in levels)

    @property
    def uses_atr(self) -> bool:
        return self.exits or self.sizing == "risk"

    @property
    def atr_bars(self) -> int:
        """Bars the ATR needs (its window plus the close before it), 0 when nothing uses it."""
        return self.atr_window + 1 if self.uses_atr else 0


class Engine:
    """Decide bars one by one against a portfolio, optionally journaling every decision."""

    def __init__(
        self,
        settings: EngineSettings,
        strategy: Strategy,
        gates: Sequence[Gate],
        portfolio: Portfolio,
        journal: JournalWriter | None = None,
        clock: Callable[[], int] = now_ms,
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.strategy = strategy
        self.gates = list(gates)
        # Each proposal's chain: only the gates that declared they judge it, in chain order.
        self.chains = {side: [g for g in self.gates if side in g.applies_to] for side in (BUY, SELL, HOLD)}
        self.portfolio = portfolio
        self.journal = journal
        self.clock = clock
        self.on_event = on_event  # called with the journal line of every order, fill or block
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
        return max(self.strategy.history, self.settings.atr_bars)

    @property
    def warmup(self) -> int:
        """Bars needed before the first decision that may trade."""
        return max(self.strategy.warmup, self.settings.atr_bars)

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
        if self.settings.uses_atr:
            cols = bar_columns(window)
            atr = average_true_range(cols["high"], cols["low"], cols["close"], self.settings.atr_window)
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
        )
        answers = {}
        for gate in self.gates:
            answer = gate.check_bars(bar_facts)
            if answer is not None:
                answers[gate.name] = answer
        return answers

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
        tf = s.timeframe_ms
        times = ts_ms(bars)
        cols = bar_columns(bars)  # one read of the frame: a column at a time costs 20 us each
        opens, closes = cols["open"].tolist(), cols["close"].tolist()
        sides = side.tolist()
        confs = conf.tolist()
        clock = self.clock
        on_event = self.on_event
        stamp_sec, stamp_prefix, stamp_bytes = -1, "", b""
        write_bytes = journal.write_bytes if journal is not None else None
        days = (times // DAY_MS).tolist()
        times_list = times.tolist()
        need = self.warmup
        exits = s.exits
        risk_sized = s.sizing == "risk"
        atrs = atr.tolist() if atr is not None else None  # built only when exits or sizing read it
        highs = cols["high"].tolist() if exits else []
        lows = cols["low"].tolist() if exits else []
        equity_out = np.empty(len(bars))
        ts_text = (
            (np.datetime_as_string(times.astype("datetime64[ms]"), unit="s").astype(object) + "Z").tolist()
            if journal is not None
            else None
        )
        ts_bytes = [text.encode() for text in ts_text] if ts_text is not None else None
        hold_template, flat_template = lines.hold_template, lines.flat_template
        answers = self._batch_answers(times, offset, now, source_ok, facts, side)
        # When every gate judging a proposal answered for the whole run, that proposal needs no
        # context of its own: HOLDs always (data), exits too (data alone judges them).
        settled: dict[int, list[Block | None]] = {}
        for code, name in ((0, HOLD), (-1, SELL)):
            chain = self.chains[name]
            if all(g.name in answers for g in chain):
                blocks: list[Block | None] = [None] * len(times_list)
                for gate in reversed(chain):  # the first gate in chain order wins
                    for i, block in enumerate(answers[gate.name]):
                        if block is not None:
                            blocks[i] = block
                settled[code] = blocks
        seq = port.last_seq
        cash, pos = port.cash, port.position
        peak = port.peak_equity
        # HOLD lines are filled into bytes prepared once; numbers encoded as `number` would.
        dumps = orjson.dumps
        pos_b = cash_b = b""
        pos_seen = cash_seen = math.nan
        for i in range(len(times_list)):
            fill = None
            if port.pending_side:
                port.cash, port.position = cash, pos
                from_flat = pos <= 0
                fill = port.fill(
                    port.pending_side,
                    opens[i],
                    s.fee,
                    s.slippage,
                    s.position_frac,
                    port.pending_seq,
                    units=port.pending_units,
                )
                if exits and fill is not None and from_flat and port.pending_side == 1:
                    self._arm(fill, port.pending_atr, seq + 1, days[i], highs[i])
                port.pending_side, port.pending_seq, port.pending_reason = 0, -1, None
                port.pending_units = port.pending_atr = None
                cash, pos = port.cash, port.position
            elif exits and pos > 0:
                port.cash, port.position = cash, pos
                fill = self._exit(opens[i], highs[i], lows[i], seq + 1)
                cash, pos = port.cash, port.position
            price = closes[i]
            if days[i] != port.day:
                port.roll_day(days[i])
            equity = cash + pos * price
            if equity > peak:
                peak = equity
            seq += 1
            proposed = sides[i]
            if proposed in settled:
                block = settled[proposed][i]
            else:
                port.cash, port.position, port.peak_equity = cash, pos, peak
                ctx = DecisionContext(
                    ts=times_list[i],
                    close_ts=times_list[i] + tf,
                    now=times_list[i] + tf if now is None else now,
                    timeframe_ms=tf,
                    price=price,
                    proposed=SIDE_NAME[proposed],
                    confidence=_num(conf[i]),
                    expected_edge=_num(edge[i]),
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
                    fee=s.fee,
                    slippage=s.slippage,
                    facts={name: float(values[i]) for name, values in facts.items()},
                    entry_units=self._size(
                        equity, cash, price, atrs[i] if atrs is not None else math.nan, confs[i]
                    )
                    if proposed == 1
                    else math.nan,
                    risk_today=port.risk_today,
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
            if action:
                port.pending_side, port.pending_seq = action, seq
                port.trades_today += action == 1  # a trade is a round trip: count entries
                if action == 1 and atrs is not None:
                    # The size and the ATR ride with the order (and in the journal, for a recovery).
                    a = atrs[i]
                    port.pending_atr = None if a != a else a
                    units = self._size(equity, cash, price, a, confs[i]) if risk_sized else None
                    port.pending_units = units
                    detail = (
                        {"atr": port.pending_atr}
                        if units is None
                        else {"units": units, "atr": port.pending_atr}
                    )
                    trace = {**trace, "detail": {**trace["detail"], **detail}}
            if now is not None and trace["stage"] == "passed" and now - times_list[i] - tf > tf:
                # Decided more than a bar after it closed (a catch-up): say so, with how late.
                late = round((now - times_list[i] - tf) / tf, 2)
                trace = {**trace, "detail": {**trace["detail"], "late_bars": late}}
            port.last_equity = equity
            equity_out[i] = equity
            if write_bytes is not None and ts_text is not None and ts_bytes is not None:
                c = confs[i]
                if now is not None or not i & 255:
                    # A replay decides a bar every few microseconds: one reading of the clock
                    # stamps 256 lines (under a millisecond apart); a live bar reads its own.
                    ms = clock()
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
                    write_bytes(
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
                        ts_text[i],
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
                    )
                    write_bytes(lines.encode(line))
                    if on_event is not None:
                        on_event(line)
                if seq % FLUSH_EVERY == 0:
                    journal.flush()  # type: ignore[union-attr]
        port.cash, port.position, port.peak_equity = cash, pos, peak
        port.last_seq = seq
        port.last_ts = times_list[-1]
        self.equity.append(equity_out)
        if journal is not None:
            journal.flush()

    def _size(self, equity: float, cash: float, price: float, atr: float, confidence: float) -> float:
        """Return the units an entry decided at `price` buys, as `risk.sizing` says; NaN if it cannot."""
        s = self.settings
        per_unit = price * (1.0 + s.slippage) * (1.0 + s.fee)
        if s.sizing != "risk":
            return cash * s.position_frac / per_unit
        if not atr > 0 or s.stop_atr is None:
            return math.nan
        units = s.risk_per_trade * equity / (s.stop_atr * atr)
        floor = s.confidence_floor
        if floor is not None and confidence == confidence and floor < 1:
            # Half the size at the entry threshold, all of it at certainty, linear between.
            units *= 0.5 + 0.5 * min(max((confidence - floor) / (1.0 - floor), 0.0), 1.0)
        return min(units, s.max_exposure * equity / price, cash / per_unit)

    def _arm(self, fill: dict[str, Any], atr: float | None, seq: int, day: int, high: float) -> None:
        """Set the exit levels of a position just entered from flat, and count the risk it takes."""
        s, port = self.settings, self.portfolio
        port.entry_seq = seq
        if atr is None:
            return  # no ATR at the decision: only the time stop can apply
        price = fill["price"]
        if s.stop_atr is not None:
            port.stop_price = fill["stop_price"] = price - s.stop_atr * atr
            port.roll_day(day)  # the risk belongs to the day the entry filled on
            port.risk_today += fill["units"] * s.stop_atr * atr
        if s.take_profit_atr is not None:
            port.take_profit_price = fill["take_profit_price"] = price + s.take_profit_atr * atr
        if s.trailing_atr is not None:
            port.trailing_dist = s.trailing_atr * atr
            port.trailing_price = fill["trailing_price"] = price - port.trailing_dist
            # The entry bar's high came after the fill at its open: it moves the stop of later bars.
            port.trailing_price = max(port.trailing_price, high - port.trailing_dist)

    def _exit(self, open_: float, high: float, low: float, seq: int) -> dict[str, Any] | None:
        """Sell at the first exit the bar reaches (the open first, then the range); None if none.

        Ratchets the trailing stop on the bar's high when the position stays open.
        """
        s, port = self.settings, self.portfolio
        stop, why = port.stop_price, "stop_loss"
        trail = port.trailing_price
        if trail is not None and (stop is None or trail > stop):
            stop, why = trail, "trailing_stop"
        target = port.take_profit_price
        price: float | None = None
        if stop is not None and open_ <= stop:
            price = open_
        elif target is not None and open_ >= target:
            price, why = open_, "take_profit"
        elif s.max_bars is not None and port.entry_seq >= 0 and seq - port.entry_seq >= s.max_bars:
            price, why = open_, "time_stop"
        elif stop is not None and low <= stop:
            price = stop  # checked before the target: when a bar reaches both, the worse is assumed
        elif target is not None and high >= target:
            price, why = target, "take_profit"
        if price is None:
            if port.trailing_dist is not None and trail is not None and high - port.trailing_dist > trail:
                port.trailing_price = high - port.trailing_dist
            return None
        return port.fill(-1, price, s.fee, s.slippage, s.position_frac, seq, reason=why)

    def equity_curve(self) -> np.ndarray:
        """Return the equity at every close decided so far in this process."""
        return np.concatenate(self.equity) if self.equity else np.empty(0)


def _num(value: float) -> float:
    return float(value) if not math.isnan(value) else math.nan
