"""The engine: one decision per bar, the same code for backtests, shadow and paper sessions.

For each new bar, in order: fill the order decided at the previous bar at this bar's open, roll
the UTC day, mark the book at the close, ask the strategy for a proposal, run the gate chain, and
write the journal line. Replays hand it many bars at once and live sessions one at a time; the
decisions are identical because a strategy's proposal for bar t depends only on bars up to t.

Every gate is asked about every proposal it declares in ``applies_to``. A gate whose verdict reads
only bar-level facts (the `data` gate) may answer for a whole run of bars at once
(`Gate.check_bars`); when every gate that applies to HOLD answers that way, a HOLD bar needs no
context of its own. That is what lets a replay decide hundreds of thousands of bars a second.
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
from labkit.features.featureset import bar_columns
from labkit.gates.base import BarFacts, Block, DecisionContext, Gate, run_gates
from labkit.journal import ALREADY_FLAT, PASSED, JournalWriter, LineEncoder, number
from labkit.portfolio import Portfolio
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

    def prime(self, history: pd.DataFrame) -> None:
        """Give the engine bars that were already decided, so a resumed session needs no warm-up."""
        self._history = history.iloc[-self.strategy.history :]

    def _absorb(self, bars: pd.DataFrame) -> None:
        # Bars already journaled (held as data_unavailable while the source was down) still belong
        # in the history the strategy looks back on once they arrive.
        window = pd.concat([self._history, bars]) if len(self._history) else bars
        window = window[~window.index.duplicated(keep="last")].sort_index()
        self._history = window.iloc[-self.strategy.history :]

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
        self._history = window.iloc[-self.strategy.history :]
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
            bars_needed=self.strategy.warmup,
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
        need = self.strategy.warmup
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
                fill = port.fill(
                    port.pending_side, opens[i], s.fee, s.slippage, s.position_frac, port.pending_seq
                )
                port.pending_side, port.pending_seq, port.pending_reason = 0, -1, None
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
                )
                known = {name: answer[i] for name, answer in answers.items()}
                block = run_gates(self.chains[ctx.proposed], ctx, known)
            if block is None:
                action, trace = proposed, PASSED
                if proposed == -1 and pos <= 0:
                    # Long-only: an exit signal while flat has nothing to do, and nothing blocked it.
                    action, trace = 0, ALREADY_FLAT
            else:
                action = 0
                trace = {"stage": block.stage, "reason": block.reason, "detail": dict(block.detail)}
            if action:
                port.pending_side, port.pending_seq = action, seq
                port.trades_today += action == 1  # a trade is a round trip: count entries
            if now is not None and trace["stage"] == "passed" and now - times_list[i] - tf > tf:
                # Decided more than a bar after it closed (a catch-up): say so, with how late.
                late = round((now - times_list[i] - tf) / tf, 2)
                trace = {**trace, "detail": {**trace["detail"], "late_bars": late}}
            port.last_equity = equity
            equity_out[i] = equity
            if write_bytes is not None and ts_text is not None and ts_bytes is not None:
                c = confs[i]
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

    def equity_curve(self) -> np.ndarray:
        """Return the equity at every close decided so far in this process."""
        return np.concatenate(self.equity) if self.equity else np.empty(0)


def _num(value: float) -> float:
    return float(value) if not math.isnan(value) else math.nan
