"""The engine: one decision per bar, the same code for backtests, shadow and paper sessions.

For each new bar, in order: fill the order decided at the previous bar at this bar's open, roll
the UTC day, mark the book at the close, ask the strategy for a proposal, run the gate chain, and
write the journal line. Replays hand it many bars at once and live sessions one at a time; the
decisions are identical because a strategy's proposal for bar t depends only on bars up to t.

Most bars propose HOLD; for those only the `data` gate applies, so once the warm-up is over and
the bar is fresh the chain's verdict is known to be "passed" and the engine skips building a
context. That shortcut is what lets a replay decide hundreds of thousands of bars a second.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from labkit.gates import HOLD, DataGate, DecisionContext, Gate, run_gates
from labkit.journal import SCHEMA, JournalWriter
from labkit.portfolio import Portfolio
from labkit.signals import Strategy
from labkit.store import ts_ms
from labkit.timeutil import DAY_MS, iso_ms, iso_s, now_ms

_SIDE_NAME = {1: "BUY", 0: HOLD, -1: "SELL"}
_SIDE_CODE = {"BUY": 1, HOLD: 0, "SELL": -1}
_PASSED: dict[str, Any] = {"stage": "passed", "reason": None, "detail": {}}
_ALREADY_FLAT: dict[str, Any] = {"stage": "passed", "reason": "already_flat", "detail": {}}
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
        self.settings = settings
        self.strategy = strategy
        self.gates = list(gates)
        data_gates = [g for g in self.gates if isinstance(g, DataGate)]
        self.data_gate = data_gates[0] if data_gates else DataGate()
        self.portfolio = portfolio
        self.journal = journal
        self.clock = clock
        self.on_event = on_event  # called with the journal line of every order, fill or block
        self.run_id = secrets.token_hex(4)
        self._history = pd.DataFrame()
        self.equity: list[np.ndarray] = []  # per-bar equity at the close, one array per call

    def prime(self, history: pd.DataFrame) -> None:
        """Give the engine bars that were already decided, so a resumed session needs no warm-up."""
        self._history = history.iloc[-self.strategy.warmup :]

    def _absorb(self, bars: pd.DataFrame) -> None:
        # Bars already journaled (held as data_unavailable while the source was down) still belong
        # in the history the strategy looks back on once they arrive.
        window = pd.concat([self._history, bars]) if len(self._history) else bars
        window = window[~window.index.duplicated(keep="last")].sort_index()
        self._history = window.iloc[-self.strategy.warmup :]

    def unavailable(self, times: list[int], now: int) -> None:
        """Journal a HOLD for each due bar the source could not deliver (stage data, data_unavailable)."""
        s, port, journal = self.settings, self.portfolio, self.journal
        price = float(self._history["close"].iloc[-1]) if len(self._history) else None
        for ts in times:
            if port.last_ts is not None and ts <= port.last_ts:
                continue
            detail: dict[str, Any] = {}
            if port.pending_side:
                # The exchange is down: the order decided on the last bar cannot be placed.
                detail["cancelled_order_seq"] = port.pending_seq
                port.pending_side, port.pending_seq, port.pending_reason = 0, -1, None
            if ts // DAY_MS != port.day:
                port.day, port.day_start_equity = ts // DAY_MS, port.last_equity
                port.trades_today = port.loss_streak = 0
            port.last_seq += 1
            port.last_ts = ts
            equity = port.cash + port.position * price if price is not None else port.last_equity
            port.last_equity = equity
            if journal is not None:
                trace = {"stage": "data", "reason": "data_unavailable", "detail": detail}
                line = {
                    "schema": SCHEMA,
                    "session": s.session,
                    "seq": port.last_seq,
                    "ts": iso_s(ts),
                    "decided_at": iso_ms(self.clock()),
                    "mode": s.mode,
                    "symbol": s.symbol,
                    "timeframe": s.timeframe,
                    "price": price,
                    "proposed": HOLD,
                    "action": HOLD,
                    "confidence": None,
                    "gate_trace": trace,
                    "rejection_reason": "data_unavailable",
                    "fill": None,
                    "position": port.position,
                    "cash": port.cash,
                    "equity": equity,
                    "model": self.strategy.model_id,
                    "correlation_id": f"{self.run_id}-{port.last_seq}",
                }
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
        self._history = window.iloc[-self.strategy.warmup :]
        # Slices bound the memory a long replay needs for its journal text.
        for lo in range(0, len(bars), SLICE_BARS):
            hi = min(lo + SLICE_BARS, len(bars))
            self._decide(
                bars.iloc[lo:hi],
                offset + lo,
                signals.side[offset + lo : offset + hi],
                signals.confidence[offset + lo : offset + hi],
                signals.expected_edge[offset + lo : offset + hi],
                now,
                source_ok,
            )
        return len(bars)

    def _decide(
        self,
        bars: pd.DataFrame,
        offset: int,
        side: np.ndarray,
        conf: np.ndarray,
        edge: np.ndarray,
        now: int | None,
        source_ok: bool,
    ) -> None:
        s, port, journal = self.settings, self.portfolio, self.journal
        tf = s.timeframe_ms
        times = ts_ms(bars)
        opens = bars["open"].to_numpy().tolist()
        closes = bars["close"].to_numpy().tolist()
        sides = side.tolist()
        confs = conf.tolist()
        clock = self.clock
        on_event = self.on_event
        stamp_sec, stamp_prefix = -1, ""
        encode = journal.encode if journal is not None else None
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
        seq = port.last_seq
        cash, pos = port.cash, port.position
        peak = port.peak_equity
        # The fast path needs the decision time to be known fresh for every bar of the call.
        fresh_all = now is None or self.data_gate.is_fresh(now, times_list[0] + tf, tf)
        first_ready = max(0, need - offset - 1)
        passed_fast = source_ok and fresh_all
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
                port.day = days[i]
                port.day_start_equity = port.last_equity
                port.trades_today = 0
                port.loss_streak = 0
            equity = cash + pos * price
            if equity > peak:
                peak = equity
            seq += 1
            proposed = sides[i]
            if proposed == 0 and i >= first_ready and passed_fast:
                action, trace = 0, _PASSED
            else:
                port.cash, port.position, port.peak_equity = cash, pos, peak
                ctx = DecisionContext(
                    ts=times_list[i],
                    close_ts=times_list[i] + tf,
                    now=times_list[i] + tf if now is None else now,
                    timeframe_ms=tf,
                    price=price,
                    proposed=_SIDE_NAME[proposed],
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
                )
                block = run_gates(self.gates, ctx)
                if block is None:
                    action, trace = proposed, _PASSED
                    if proposed == -1 and pos <= 0:
                        # Long-only: an exit signal while flat has nothing to do, and nothing blocked it.
                        action, trace = 0, _ALREADY_FLAT
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
            if write_bytes is not None and encode is not None and ts_text is not None:
                c = confs[i]
                ms = clock()
                if ms // 1000 != stamp_sec:  # the date part changes once a second: format it once
                    stamp_sec, stamp_prefix = ms // 1000, iso_ms(ms)[:-5]
                line = {
                    "schema": SCHEMA,
                    "session": s.session,
                    "seq": seq,
                    "ts": ts_text[i],
                    "decided_at": f"{stamp_prefix}.{ms % 1000:03d}Z",
                    "mode": s.mode,
                    "symbol": s.symbol,
                    "timeframe": s.timeframe,
                    "price": price,
                    "proposed": _SIDE_NAME[proposed],
                    "action": _SIDE_NAME[action],
                    "confidence": None if c != c else float(c),
                    "gate_trace": trace,
                    "rejection_reason": None if trace["stage"] == "passed" else trace["reason"],
                    "fill": fill,
                    "position": pos,
                    "cash": cash,
                    "equity": equity,
                    "model": self.strategy.model_id,
                    "correlation_id": f"{self.run_id}-{seq}",
                }
                write_bytes(encode(line))
                if on_event is not None and (action or fill is not None or trace is not _PASSED):
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
