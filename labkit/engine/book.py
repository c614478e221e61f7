"""One book over a universe: shared cash, a position per symbol, decisions per (bar, symbol).

At each time any symbol has a bar, the symbols are decided in the book's order (the order the user
gave), each as the single-symbol engine decides a bar: fill the order waiting for this open, check
the exits the engine enforces, mark the book at the close, ask the symbol's strategy, run the gate
chain, write the line. Cash is the book's: an entry spends from it and every line says how much is
left; an entry decided but not yet filled has its cost set aside, so the next symbol's entry on the
same bar cannot size itself on it. Equity is the book's too: cash plus every position marked at this
time's close (all bars of a time close together; a symbol without a bar at its latest close), so
every line of a time after its last fill shows the same equity. ``seq`` counts the book's lines, one
gapless sequence over every symbol.

What is per symbol and what is the book's follows one rule: the guardrails on loss (daily loss,
drawdown) and the halts judge the book; every other gate and counter (trades today, the losing
streak, the day's risk budget, warm-up) is the symbol's own. A symbol without a bar at a time has
nothing to decide on: its line holds (stage ``data``, reason ``no_bar``) and its waiting order waits
for its next bar.

Sizing: ``risk`` sizing sizes each entry by its stop against the book's equity, as alone. ``all_in``
cannot put all the cash into every symbol: in a book it buys an equal slice, the smaller of the cash
and equity / slots, where slots is ``portfolio.max_open_positions`` when set, else the number of
symbols.

A replay steps only the (bar, symbol) cells where something can happen: a proposal, an order waiting
for the symbol's open, a position whose exits are checked. Every other cell holds; with a journal
its line is written from the book as the last stepped cell left it.
"""

from __future__ import annotations

import functools
import heapq
import math
import secrets
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import is_not
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from labkit.data.universe import Universe
from labkit.engine.exits import arm, enforce, entry_units
from labkit.engine.journal import ALREADY_FLAT, ALREADY_LONG, PASSED, JournalWriter, LineEncoder
from labkit.engine.observer import Observer
from labkit.engine.portfolio import Portfolio
from labkit.engine.settings import EngineSettings
from labkit.errors import ConfigError
from labkit.features.cross_section import LOOKBACK as CROSS_LOOKBACK
from labkit.features.cross_section import NAMES as CROSS_NAMES
from labkit.features.cross_section import rank_columns
from labkit.features.definitions import atr as average_true_range
from labkit.features.featureset import bar_columns
from labkit.gates.base import BarFacts, Block, BookFacts, DecisionContext, Gate, run_gates
from labkit.gates.correlation import correlated_scale
from labkit.strategies.base import Strategy
from labkit.strategies.sides import BUY, HOLD, SELL, SIDE_NAME
from labkit.timeutil import DAY_MS, iso_ms, iso_s, now_ms

NO_BAR: Mapping[str, Any] = {"stage": "data", "reason": "no_bar", "detail": {}}


class PortfolioConfig(BaseModel):
    """``portfolio`` in labkit.yaml: the limits a book's entries must respect (unset: no limit)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    max_open_positions: int | None = Field(None, ge=1, le=100_000, description="symbols held at once")
    max_heat: float | None = Field(
        None, gt=0, le=1, description="open stop risk plus the new entry's, as a fraction of equity"
    )
    max_correlation: float | None = Field(
        None,
        gt=0,
        le=1,
        description="return correlation with an open position above which an entry is scaled",
    )
    correlation_window: int = Field(
        500, ge=3, le=1_000_000, description="bars of returns the correlation uses"
    )
    correlated_scale: float = Field(
        0.5, ge=0, le=1, description="what a correlated entry's size is multiplied by (0: refused)"
    )


@dataclass
class Book:
    """A book over a universe: `top` holds the cash and the book-wide counters (equity, peak, the UTC
    day, halts, how far the journal got) as a single symbol's `Portfolio` holds them, with no
    position of its own; each symbol's leg holds its position, its waiting order, its exits and its
    own counters. A session saves both (``portfolio`` and ``legs`` in state.json)."""

    top: Portfolio
    legs: dict[str, Portfolio]

    @classmethod
    def start(cls, capital: float, symbols: Sequence[str]) -> Book:
        return cls(Portfolio.start(capital), {symbol: Portfolio.start(capital) for symbol in symbols})


@dataclass(frozen=True)
class BookSettings:
    """A book's settings: the single-symbol engine's (its `symbol` unused) and the portfolio limits."""

    engine: EngineSettings
    portfolio: PortfolioConfig = field(default_factory=PortfolioConfig)


class BookEngine:
    """Decide a universe bar by bar and symbol by symbol against one book."""

    def __init__(
        self,
        settings: BookSettings,
        strategies: Mapping[str, Strategy],
        gates: Mapping[str, Sequence[Gate]],
        book: Book,
        journal: JournalWriter | None = None,
        clock: Callable[[], int] = now_ms,
        observer: Observer | None = None,
    ) -> None:
        self.symbols = tuple(strategies)
        self.strategies = dict(strategies)
        self.gates = {symbol: list(chain) for symbol, chain in gates.items()}
        self.book = book
        self.journal = journal
        self.clock = clock
        self.observer = observer if observer is not None else Observer()
        self.run_id = secrets.token_hex(4)
        self.settings = settings
        self.equity = np.empty(0)  # the book's equity at each time's last close, after a process
        self._engaged: set[int] = set()
        self._reserved: dict[int, float] = {}  # cash an entry waiting for its open will spend, by symbol
        self._equity_parts: list[np.ndarray] = []
        # Symbols of the time `book.top.last_ts` already decided when a run was cut off mid-time
        # (0: that time is whole); the next `process` decides the rest of it first.
        self.partial = 0
        # What each symbol's lines refused, by (stage, reason), and the net P&L of its closed trades.
        self.blocks: dict[str, Counter[tuple[str, str]]] = {symbol: Counter() for symbol in self.symbols}
        self.closed_pnl: dict[str, list[float]] = {symbol: [] for symbol in self.symbols}
        # What one run leaves the next: each symbol's recent bars, its latest close, and the book's
        # recent marks (for correlations), so a universe decided in pieces decides as in one go.
        self._history: dict[str, pd.DataFrame] = {}
        self._last_close = np.full(len(self.symbols), np.nan)
        self._tail = np.empty((0, len(self.symbols)))

    @property
    def settings(self) -> BookSettings:
        return self._settings

    @settings.setter
    def settings(self, settings: BookSettings) -> None:
        # A transition changes the mode mid-session: the lines from then on say so.
        self._settings = settings
        self.__dict__.pop("_limited", None)  # the limits may come with the new settings
        s = settings.engine
        self.lines = {
            symbol: LineEncoder(s.session, s.mode, symbol, s.timeframe, strategy.model_id, self.run_id)
            for symbol, strategy in self.strategies.items()
        }

    @functools.cached_property
    def _limited(self) -> bool:
        # Whether a portfolio limit is set: without one the portfolio gates pass, so no entry needs
        # the book's facts (its open stop risk, its correlations) worked out.
        limits = self.settings.portfolio
        return any(
            v is not None for v in (limits.max_open_positions, limits.max_heat, limits.max_correlation)
        )

    @functools.cached_property
    def warmup(self) -> int:
        """Bars a symbol needs before its first decision that may trade (its strategy's, the ATR's)."""
        return max(max(st.warmup for st in self.strategies.values()), self.settings.engine.risk.atr_bars)

    @property
    def history(self) -> int:
        """Bars of each symbol's history kept for the next run: the strategies', the ATR's, and the
        bars a cross-sectional rank's momentum and volatility read."""
        xs = CROSS_LOOKBACK if self.cross_sectional else 0
        return max(max(st.history for st in self.strategies.values()), self.settings.engine.risk.atr_bars, xs)

    @functools.cached_property
    def cross_sectional(self) -> bool:
        """Whether a strategy reads features ranked across the universe, which the book supplies."""
        return any(getattr(st, "cross_sectional", ()) for st in self.strategies.values())

    def check_universe(self) -> None:
        """Refuse a model whose features rank a symbol among another universe (`check_universe`)."""
        check_universe(self.strategies.values(), self.symbols)

    def prime(self, history: Mapping[str, pd.DataFrame]) -> None:
        """Give the engine each symbol's bars already decided, so a resumed book needs no warm-up.

        An entry waiting for its open reserves its cost at the close it was decided at: the last
        bar of its symbol's history.
        """
        cost = (1.0 + self.settings.engine.broker.slippage) * (1.0 + self.settings.engine.broker.fee)
        for j, symbol in enumerate(self.symbols):
            bars = history.get(symbol)
            if bars is None or not len(bars):
                continue
            self._history[symbol] = bars.iloc[-max(1, self.history) :]
            self._last_close[j] = float(bars["close"].iloc[-1])
            leg = self.book.legs[symbol]
            if leg.pending_side == 1 and leg.pending_units is not None:
                self._reserved[j] = leg.pending_units * self._last_close[j] * cost

    def unavailable(self, times: list[int], now: int) -> None:
        """Journal a HOLD for every symbol at each due time the source could not deliver.

        As alone: there is no bar to judge, so no gate is asked (stage ``data``, reason
        ``data_unavailable``), and an order waiting for the open is cancelled, naming its seq.
        """
        top, lines = self.book.top, self.lines
        for ts in times:
            if top.last_ts is not None and ts <= top.last_ts:
                continue
            top.roll_day(ts // DAY_MS)
            marks = self._last_close.copy()
            marks[np.isnan(marks)] = 0.0
            positions = np.array([self.book.legs[symbol].position for symbol in self.symbols])
            equity = top.cash + float(positions @ marks)
            for j, symbol in enumerate(self.symbols):
                leg = self.book.legs[symbol]
                detail: dict[str, Any] = {}
                if leg.pending_side:
                    detail["cancelled_order_seq"] = leg.pending_seq
                    leg.pending_side, leg.pending_seq, leg.pending_reason = 0, -1, None
                    leg.pending_units = leg.pending_atr = None
                    self._reserved.pop(j, None)
                top.last_seq += 1
                if self.journal is not None:
                    price = self._last_close[j]
                    line = lines[symbol].line(
                        top.last_seq,
                        iso_s(ts),
                        iso_ms(self.clock()),
                        None if price != price else float(price),
                        HOLD,
                        HOLD,
                        None,
                        {"stage": "data", "reason": "data_unavailable", "detail": detail},
                        None,
                        leg.position,
                        top.cash,
                        equity,
                    )
                    self.journal.write(line)
            top.last_ts, top.last_equity = ts, equity
        if self.journal is not None:
            self.journal.flush()

    def equity_curve(self) -> np.ndarray:
        """The book's equity at each time's last close, over every run of this engine."""
        return np.concatenate(self._equity_parts) if self._equity_parts else np.empty(0)

    def process(self, universe: Universe, now: int | None = None) -> int:
        """Decide every (time, symbol) cell of `universe`; return how many cells were decided.

        `now` is when the decisions are taken; None means as each bar closes (a replay).
        """
        if tuple(universe.symbols) != self.symbols:
            raise ValueError(f"universe symbols {universe.symbols} differ from the book's {self.symbols}")
        last_ts = self.book.top.last_ts
        if last_ts is not None and len(universe.times):
            # Times already decided are skipped; a time decided only in part (a run cut off while
            # writing it) is finished: its first `partial` symbols have their lines.
            keep = universe.times >= last_ts if self.partial else universe.times > last_ts
            if not keep.all():
                universe = universe[keep]
        skip = self.partial if len(universe.times) and universe.times[0] == last_ts else 0
        n_t, n_s = len(universe.times), len(self.symbols)
        if not n_t:
            return 0
        s = self.settings.engine
        exits = s.risk.exits
        plan = _Plan.build(self, universe, now)
        book = self.book
        top = book.top
        legs = [book.legs[symbol] for symbol in self.symbols]
        pos = np.array([leg.position for leg in legs])
        start = (top.cash, pos.copy())
        self.equity = np.empty(n_t)
        # The symbols held or with an entry waiting, and the cash those entries will spend (a command
        # between runs may have cancelled an entry: it spends nothing).
        self._engaged = {j for j, leg in enumerate(legs) if leg.position > 0 or leg.pending_side == 1}
        self._reserved = {j: v for j, v in self._reserved.items() if legs[j].pending_side == 1}
        # Cells are visited in (time, symbol) order; a heap holds the ones an order or exit made busy.
        proposing = np.nonzero(plan.side)  # (times, symbols) of every proposal
        busy = list(zip(proposing[0].tolist(), proposing[1].tolist(), strict=True))
        busy += [
            (int(plan.rows[j][0]), j) for j, leg in enumerate(legs) if leg.pending_side and len(plan.rows[j])
        ]
        if exits:
            busy += [
                (int(plan.rows[j][0]), j)
                for j, leg in enumerate(legs)
                if leg.position > 0 and len(plan.rows[j])
            ]
        if skip:
            busy = [(t, j) for t, j in busy if t or j >= skip]  # the cut-off time's decided symbols
        heapq.heapify(busy)
        changes: list[tuple[int, float, int, float]] = []  # (cell, cash after, symbol, its position after)
        cell_lines: dict[int, bytes] = {}
        done, peak, last = -1, top.peak_equity, (-1, -1)
        fee, slippage = s.broker.fee, s.broker.slippage
        cost = (1.0 + slippage) * (1.0 + fee)
        # The positions' value at the current time's closes, kept as fills move it.
        mark, mark_at = 0.0, -1
        while busy:
            t, j = heapq.heappop(busy)
            if (t, j) <= last:
                continue  # pushed twice (a proposal's own cell, and an order's fill there)
            last = (t, j)
            leg = legs[j]
            if (
                plan.side[t, j] == -1
                and leg.position <= 0
                and not leg.pending_side
                and plan.settled[j][-1]
                and plan.settled_block(j, -1, int(plan.own_index[t, j])) is None
            ):
                continue  # an exit while flat that nothing blocked changes nothing: its line holds
            if t == done + 1 and done >= 0:
                # The next time straight after one stepped through: the book closed it at its mark.
                closed = top.cash + mark
                self.equity[done] = closed
                peak = max(peak, closed)
                top.last_equity = closed
                if plan.days[t] != top.day:
                    top.day, top.day_start_equity = int(plan.days[t]), closed
                done = t
            elif t > done:
                peak = self._advance(plan, pos, done, t, peak)
                done = t
            ts = int(universe.times[t])
            k = int(plan.own_index[t, j])
            seq = top.last_seq + 1 + t * n_s + j - skip  # every cell has a line: its seq is its place
            day = ts // DAY_MS
            leg.roll_day(day)
            fill = exit_fill = None
            bar = (float(plan.open[t, j]), float(plan.high[t, j]), float(plan.low[t, j]))
            if t != mark_at:
                mark, mark_at = float(pos @ plan.close_ff[t]), t
            held = leg.position
            leg.cash = top.cash
            if leg.pending_side:
                bought, from_flat = leg.pending_side == 1, leg.position <= 0
                fill = leg.fill(
                    leg.pending_side, bar[0], fee, slippage, 1.0, leg.pending_seq, units=leg.pending_units
                )
                if fill is not None:
                    if exits and bought and from_flat:
                        arm(s, leg, fill, leg.pending_atr, seq, day)
                    self.observer.on_fill(ts, fill)
                leg.pending_side, leg.pending_seq, leg.pending_reason = 0, -1, None
                leg.pending_units = leg.pending_atr = None
                if exits and bought and fill is not None:
                    exit_fill = enforce(s, leg, *bar, seq)
                    if exit_fill is not None:
                        self.observer.on_fill(ts, exit_fill)
            elif exits and leg.position > 0:
                fill = enforce(s, leg, *bar, seq)
                if fill is not None:
                    self.observer.on_fill(ts, fill)
            top.cash = leg.cash
            price = float(plan.close[t, j])
            if leg.position != held:
                pos[j] = leg.position
                mark += (leg.position - held) * price
            equity = top.cash + mark
            peak = max(peak, equity)
            proposed = int(plan.side[t, j])
            action, trace, units = self._judge(plan, t, j, k, proposed, price, equity, peak)
            self._reserved.pop(j, None)  # an entry waiting for this open has filled, or could not
            if action:
                leg.pending_side, leg.pending_seq = action, seq
                leg.trades_today += action == 1
                if action == 1:
                    leg.pending_atr, leg.pending_units = plan.atr_at(j, k), units
                    self._reserved[j] = units * price * cost
            if leg.position > 0 or leg.pending_side == 1:
                self._engaged.add(j)
            else:
                self._engaged.discard(j)
            if action or (exits and leg.position > 0):
                rows = plan.rows[j]
                if k + 1 < len(rows):
                    heapq.heappush(busy, (int(rows[k + 1]), j))
            top.last_equity = equity
            changes.append((t * n_s + j, top.cash, j, float(pos[j])))
            symbol = self.symbols[j]
            if trace["stage"] != "passed":
                self.blocks[symbol][(trace["stage"], trace["reason"])] += 1
            for one in (fill, exit_fill):
                if one is not None and one["pnl"] is not None:
                    self.closed_pnl[symbol].append(one["pnl"])
            if self.journal is not None:
                conf = float(plan.confidence[t, j])
                encoder = self.lines[self.symbols[j]]
                line = encoder.line(
                    seq,
                    iso_s(ts),
                    iso_ms(self.clock()),
                    price,
                    SIDE_NAME[proposed],
                    SIDE_NAME[action],
                    None if conf != conf else conf,
                    trace,
                    fill,
                    float(pos[j]),
                    top.cash,
                    equity,
                    exit_fill,
                )
                cell_lines[t * n_s + j] = encoder.encode(line)
        top.peak_equity = self._advance(plan, pos, done, n_t, peak)
        self._count_quiet_blocks(plan, {change[0] for change in changes}, skip)
        if self.journal is not None:
            self._write(plan, start, changes, cell_lines, skip)
        top.last_seq += n_t * n_s - skip
        self.partial = 0
        top.last_ts = int(universe.times[-1])
        self._equity_parts.append(self.equity)
        seen = plan.close_ff[-1] > 0
        self._last_close[seen] = plan.close_ff[-1][seen]
        if self.settings.portfolio.max_correlation is not None:
            window = self.settings.portfolio.correlation_window + 1
            self._tail = np.vstack([self._tail, plan.close_ff])[-window:]
        for leg in legs:
            leg.cash = top.cash
        return n_t * n_s - skip

    def _judge(
        self, plan: _Plan, t: int, j: int, k: int, proposed: int, price: float, equity: float, peak: float
    ) -> tuple[int, Mapping[str, Any], float]:
        # The gate chain's verdict on cell (t, j): the action, its trace, and an entry's size.
        leg = self.book.legs[self.symbols[j]]
        units = math.nan
        block = plan.settled_block(j, proposed, k)
        extra: dict[str, Any] = {}
        if block is None and not plan.is_settled(j, proposed):
            if proposed == 1:
                units = self._entry_units(plan, t, j, k, equity)
            ctx = self._context(plan, t, j, k, price, equity, peak, units)
            block = run_gates(plan.chains[j][SIDE_NAME[proposed]], ctx, plan.known(j, k))
            if block is None and ctx.book is not None:
                factor, extra = correlated_scale(ctx.book)
                units *= factor
        elif proposed == 1:
            units = self._entry_units(plan, t, j, k, equity)
        if block is not None or proposed == 1:
            self.observer.on_verdict(int(plan.times[t]), SIDE_NAME[proposed], block)
        if block is not None:
            return 0, _trace(block), units
        if proposed == -1 and leg.position <= 0:
            return 0, ALREADY_FLAT, units
        if proposed == 1 and leg.position > 0:
            return 0, ALREADY_LONG, units  # one position per symbol: no adding to it
        if proposed == 1:
            if not units > 0:
                return (
                    0,
                    {"stage": "risk_budget", "reason": "below_min_size", "detail": {"units": units}},
                    units,
                )
            return 1, {**PASSED, "detail": {"units": units, "atr": plan.atr_at(j, k), **extra}}, units
        return proposed, PASSED, units

    def _advance(self, plan: _Plan, pos: np.ndarray, done: int, upto: int, peak: float) -> float:
        # Move the book from the end of time `done` to the start of time `upto`: the times between
        # changed nothing but the marks. Their equity at the close is the curve; their marks move the
        # peak; a UTC day starting among them starts from the equity at the close before it.
        top = self.book.top
        lo = max(done, 0)
        marks = top.cash + plan.close_ff[lo:upto] @ pos
        self.equity[lo:upto] = marks
        if len(marks):
            peak = max(peak, float(marks.max()))
        if upto < len(plan.times) and int(plan.days[upto]) != top.day:
            first = int(np.searchsorted(plan.days, plan.days[upto]))  # the day's first time
            top.day = int(plan.days[upto])
            top.day_start_equity = float(marks[first - 1 - lo]) if first - 1 >= lo else top.last_equity
        if len(marks):
            top.last_equity = float(marks[-1])
        return peak

    def _entry_units(self, plan: _Plan, t: int, j: int, k: int, equity: float) -> float:
        s = self.settings.engine
        price = float(plan.close[t, j])
        cash = self._free_cash()
        if s.risk.sizing == "risk":
            conf = float(plan.confidence[t, j])
            return entry_units(s, equity, cash, price, plan.atr_at(j, k) or math.nan, conf)
        slots = self.settings.portfolio.max_open_positions or len(self.symbols)
        per_unit = price * (1.0 + s.broker.slippage) * (1.0 + s.broker.fee)
        return min(cash, equity / slots) * s.risk.position_frac / per_unit

    def _free_cash(self) -> float:
        # The cash entries decided but not yet filled will spend (at the close they were decided at)
        # is spoken for: a later entry on the same bar cannot size itself on it.
        return max(0.0, self.book.top.cash - sum(self._reserved.values()))

    def _context(
        self, plan: _Plan, t: int, j: int, k: int, price: float, equity: float, peak: float, units: float
    ) -> DecisionContext:
        s, top, leg = self.settings.engine, self.book.top, self.book.legs[self.symbols[j]]
        tf = s.timeframe_ms
        ts = int(plan.times[t])
        return DecisionContext(
            ts=ts,
            close_ts=ts + tf,
            now=ts + tf if plan.now is None else plan.now,
            timeframe_ms=tf,
            price=price,
            proposed=SIDE_NAME[int(plan.side[t, j])],
            confidence=float(plan.confidence[t, j]),
            expected_edge=float(plan.edge[t, j]),
            bars_available=plan.offset[j] + k + 1,
            bars_needed=self.warmup,
            source_ok=True,
            position=leg.position,
            cash=self._free_cash(),
            equity=equity,
            peak_equity=peak,
            day_start_equity=top.day_start_equity,
            trades_today=leg.trades_today,
            loss_streak=leg.loss_streak,
            halted=top.halted,
            reduce_only=top.reduce_only,
            halt_reason=top.halt_reason,
            fee=s.broker.fee,
            slippage=s.broker.slippage,
            facts={name: float(values[k]) for name, values in plan.facts[j].items()},
            entry_units=units,
            risk_today=leg.risk_today,
            round_trip_cost=s.broker.round_trip_cost,
            book=self._book_facts(plan, t, j, k, units)
            if int(plan.side[t, j]) == 1 and self._limited
            else None,
        )

    def _book_facts(self, plan: _Plan, t: int, j: int, k: int, units: float) -> BookFacts:
        s, limits = self.settings.engine, self.settings.portfolio
        others = [(self.symbols[i], self.book.legs[self.symbols[i]]) for i in sorted(self._engaged) if i != j]
        heat = sum(open_risk(leg, s) for _, leg in others)
        atr = plan.atr_at(j, k)
        stop = s.risk.stop_atr
        price = float(plan.close[t, j])
        entry_risk = units * stop * atr if stop is not None and atr is not None else units * price
        correlations: dict[str, float] = {}
        if limits.max_correlation is not None:
            for symbol, _ in others:
                c = plan.correlation(j, self.symbols.index(symbol), t, limits.correlation_window)
                if c == c:
                    correlations[symbol] = c
        return BookFacts(
            symbol=self.symbols[j],
            open_positions=len(others),
            heat=heat,
            entry_risk=entry_risk if entry_risk == entry_risk else 0.0,
            correlations=correlations,
            max_open_positions=limits.max_open_positions,
            max_heat=limits.max_heat,
            max_correlation=limits.max_correlation,
            correlated_scale=limits.correlated_scale,
        )

    def _count_quiet_blocks(self, plan: _Plan, stepped: set[int], skip: int) -> None:
        # The cells not stepped through hold; a run-wide answer (warm-up, a halt) may have refused
        # them, as their lines say.
        n_s = len(self.symbols)
        for j, symbol in enumerate(self.symbols):
            for side in (0, -1):
                if not plan.settled[j][side]:
                    continue
                for gate in plan.chains[j][SIDE_NAME[side]]:
                    answer = plan.answers[j][gate.name]
                    for k in _blocked(answer):
                        t = int(plan.rows[j][k])
                        if plan.side[t, j] != side or t * n_s + j in stepped or t * n_s + j < skip:
                            continue
                        if plan.settled_block(j, side, k) is answer[k]:  # the first in chain order
                            block = answer[k]
                            assert block is not None
                            self.blocks[symbol][(block.stage, block.reason)] += 1

    def _write(
        self,
        plan: _Plan,
        start: tuple[float, np.ndarray],
        changes: list[tuple[int, float, int, float]],
        cell_lines: dict[int, bytes],
        skip: int,
    ) -> None:
        # Every cell's line in (time, symbol) order: the stepped ones as they were written, the others
        # holding, with the book as the last stepped cell before them left it.
        assert self.journal is not None
        n_t, n_s = plan.close.shape
        first = self.book.top.last_seq + 1 - skip
        encoders = [self.lines[symbol] for symbol in self.symbols]
        cash, pos = start[0], start[1].copy()
        at, out = 0, []
        for t in range(n_t):
            ts = iso_s(int(plan.times[t]))
            stamp = iso_ms(self.clock())
            for j in range(0 if t else skip, n_s):
                cell = t * n_s + j
                if cell in cell_lines:
                    out.append(cell_lines[cell])
                    _, cash, moved, units = changes[at]
                    pos[moved] = units
                    at += 1
                    continue
                present = bool(plan.present[t, j])
                price = float(plan.close_ff[t, j]) if present or plan.close_ff[t, j] > 0 else None
                side = int(plan.side[t, j]) if present else 0
                trace: Mapping[str, Any] = NO_BAR
                if present:
                    block = plan.settled_block(j, side, int(plan.own_index[t, j]))
                    trace = _trace(block) if block is not None else ALREADY_FLAT if side == -1 else PASSED
                conf = float(plan.confidence[t, j])
                line = encoders[j].line(
                    first + cell,
                    ts,
                    stamp,
                    price,
                    SIDE_NAME[side],
                    HOLD,
                    None if conf != conf else conf,
                    trace,
                    None,
                    float(pos[j]),
                    cash,
                    cash + float(pos @ plan.close_ff[t]),
                )
                out.append(encoders[j].encode(line))
            if len(out) >= 65_536:
                self.journal.write_bytes(b"".join(out))
                out = []
        self.journal.write_bytes(b"".join(out))
        self.journal.flush()


def open_risk(leg: Portfolio, s: EngineSettings) -> float:
    """Return what `leg` loses if its stop is hit, in quote: from its entry price, or all of it unstopped.

    An entry still waiting for its open counts by its decided size and stop distance.
    """
    if leg.position > 0:
        stop = leg.stop_price
        if leg.trailing_price is not None and (stop is None or leg.trailing_price > stop):
            stop = leg.trailing_price
        if stop is None:
            return leg.position * leg.avg_price
        return leg.position * max(0.0, leg.avg_price - stop)
    if leg.pending_side == 1 and leg.pending_units is not None:
        if s.risk.stop_atr is not None and leg.pending_atr is not None:
            return leg.pending_units * s.risk.stop_atr * leg.pending_atr
        return math.nan
    return 0.0


def _blocked(answer: list[Block | None]) -> list[int]:
    # The bars some block was given for, found at C speed: most answers are None.
    if answer.count(None) == len(answer):
        return []
    return list(compress(range(len(answer)), map(is_not, answer, repeat(None))))


def _trace(block: Block) -> dict[str, Any]:
    return {"stage": block.stage, "reason": block.reason, "detail": dict(block.detail)}


def _windows(engine: BookEngine, universe: Universe) -> list[tuple[pd.DataFrame, int]]:
    # Each symbol's window, its bars from earlier runs first (a strategy looks back over them), and
    # where this run's bars start in it.
    out = []
    for symbol in engine.symbols:
        history, bars = engine._history.get(symbol), universe.bars(symbol)
        if history is not None and len(history) and len(bars):
            history = history[history.index < bars.index[0]]  # a time finished after a cut
        window = pd.concat([history, bars]) if history is not None and len(history) else bars
        out.append((window, len(window) - len(bars)))
    return out


def _with_ranks(windows: list[tuple[pd.DataFrame, int]]) -> list[tuple[pd.DataFrame, int]]:
    # The cross-sectional ranks, as training computed them, beside each symbol's bars. A rank at a
    # time of this run reads each symbol's momentum and volatility there, from its own last bars:
    # the history kept covers them (`BookEngine.history`), so a run in pieces ranks as one in one
    # go. Bars from earlier runs keep the ranks they were given then; bars primed without them (a
    # resumed session) take the ranks their history alone gives.
    from labkit.data.bars import ts_ms

    ranks = rank_columns(
        [(np.asarray(ts_ms(w), dtype="int64"), w["close"].to_numpy(float)) for w, _ in windows]
    )
    out = []
    for (window, offset), computed in zip(windows, ranks, strict=True):
        columns = {}
        for name in CROSS_NAMES:
            values = computed[name]
            if name in window.columns and offset:
                kept = window[name].to_numpy(dtype="float64")[:offset]
                values[:offset] = np.where(np.isnan(kept), values[:offset], kept)
            columns[name] = values
        out.append((window.assign(**columns), offset))
    return out


class _Plan:
    """What a replay knows about every cell before deciding any: each symbol's own bars, proposals,
    facts, ATR and the verdicts its gates gave for the whole run, laid on the (time, symbol) grid."""

    def __init__(self, universe: Universe, last_close: np.ndarray, tail: np.ndarray, now: int | None) -> None:
        self.times = universe.times
        self.now = now
        self.present = universe.present
        self.open, self.high, self.low = (universe.columns[c] for c in ("open", "high", "low"))
        self.close = universe.columns["close"]
        # A symbol without a bar is marked at its latest close, from an earlier run if need be.
        ff = pd.DataFrame(np.vstack([last_close[None, :], self.close])).ffill().to_numpy()[1:]
        self.close_ff = np.nan_to_num(ff, nan=0.0)  # no bar yet: nothing can be held, the mark is 0
        self.days = universe.times // DAY_MS
        shape = self.close.shape
        self.side = np.zeros(shape, dtype="int8")
        self.confidence = np.full(shape, np.nan)
        self.edge = np.full(shape, np.nan)
        self.own_index = np.full(shape, -1, dtype="int64")
        self.rows: list[np.ndarray] = []
        self.offset: list[int] = []
        self.facts: list[dict[str, np.ndarray]] = []
        self.atr: list[np.ndarray | None] = []
        self.answers: list[dict[str, list[Block | None]]] = []
        self.chains: list[dict[str, list[Gate]]] = []
        self.settled: list[dict[int, bool]] = []
        # Correlations look back over earlier runs' closes too (`tail`): a live bar sees what a replay sees.
        self.tail_rows = len(tail)
        marks = np.vstack([tail, self.close_ff]) if len(tail) else self.close_ff
        with np.errstate(divide="ignore", invalid="ignore"):
            self.log_close = np.log(np.where(marks > 0, marks, np.nan))

    @classmethod
    def build(cls, engine: BookEngine, universe: Universe, now: int | None = None) -> _Plan:
        plan = cls(universe, engine._last_close, engine._tail, now)
        s = engine.settings.engine
        top = engine.book.top
        windows = _windows(engine, universe)
        if engine.cross_sectional:
            windows = _with_ranks(windows)
        for j, symbol in enumerate(engine.symbols):
            rows = np.flatnonzero(universe.present[:, j])
            plan.rows.append(rows)
            plan.own_index[rows, j] = np.arange(len(rows))
            window, offset = windows[j]
            plan.offset.append(offset)
            engine._history[symbol] = window.iloc[-max(1, engine.history) :]
            signals = engine.strategies[symbol].propose(window)
            facts = dict(signals.facts)
            chain = engine.gates[symbol]
            for gate in chain:
                facts.update(gate.prepare(window, signals.facts, offset))
            facts = {name: np.asarray(values)[offset:] for name, values in facts.items()}
            plan.side[rows, j] = signals.side[offset:]
            plan.confidence[rows, j] = signals.confidence[offset:]
            plan.edge[rows, j] = signals.expected_edge[offset:]
            plan.facts.append(facts)
            atr = None
            if s.risk.atr_bars and len(window):
                cols = bar_columns(window)
                atr = average_true_range(cols["high"], cols["low"], cols["close"], s.risk.atr_window)[offset:]
            plan.atr.append(atr)
            ts = universe.times[rows]
            bar_facts = BarFacts(
                ts=ts,
                close_ts=ts + s.timeframe_ms,
                now=ts + s.timeframe_ms if now is None else np.full(len(ts), now, dtype="int64"),
                bars_available=offset + np.arange(1, len(rows) + 1),
                timeframe_ms=s.timeframe_ms,
                bars_needed=engine.warmup,
                source_ok=True,
                signals=facts,
                proposed=np.asarray(signals.side)[offset:],  # this run's bars, as `signals` above
                halted=top.halted,
                reduce_only=top.reduce_only,
                halt_reason=top.halt_reason,
            )
            answers = {}
            for gate in chain:
                answer = gate.check_bars(bar_facts)
                if answer is not None:
                    answers[gate.name] = answer
            plan.answers.append(answers)
            chains = {side: [g for g in chain if side in g.applies_to] for side in (BUY, SELL, HOLD)}
            plan.chains.append(chains)
            plan.settled.append(
                {code: all(g.name in answers for g in chains[SIDE_NAME[code]]) for code in (1, 0, -1)}
            )
        return plan

    def is_settled(self, j: int, side: int) -> bool:
        """Whether every gate judging `side` for symbol `j` answered for the whole run."""
        return self.settled[j][side]

    def settled_block(self, j: int, side: int, k: int) -> Block | None:
        """The first block the run-wide answers give symbol `j`'s bar `k` when they settle `side`."""
        if not self.is_settled(j, side):
            return None
        for gate in self.chains[j][SIDE_NAME[side]]:
            block = self.answers[j][gate.name][k]
            if block is not None:
                return block
        return None

    def known(self, j: int, k: int) -> dict[str, Block | None]:
        return {name: answer[k] for name, answer in self.answers[j].items()}

    def atr_at(self, j: int, k: int) -> float | None:
        atr = self.atr[j]
        if atr is None:
            return None
        value = float(atr[k])
        return None if value != value else value

    def correlation(self, j: int, i: int, t: int, window: int) -> float:
        """The correlation of symbols `j` and `i`'s close-to-close log returns over the `window` times
        up to `t` (NaN when fewer than 3 returns)."""
        t += self.tail_rows
        lo = max(0, t - window)
        a = np.diff(self.log_close[lo : t + 1, j])
        b = np.diff(self.log_close[lo : t + 1, i])
        ok = np.isfinite(a) & np.isfinite(b)
        if ok.sum() < 3:
            return math.nan
        a, b = a[ok], b[ok]
        if a.std() == 0 or b.std() == 0:
            return math.nan
        return float(np.corrcoef(a, b)[0, 1])


def check_universe(strategies: Iterable[Strategy], symbols: Sequence[str]) -> None:
    """Refuse a model whose features rank a symbol among another universe than the book's `symbols`.

    A rank among three symbols is not a rank among five: a cross-sectional model trades only the
    universe it was trained over, in any order.
    """
    for strategy in strategies:
        trained = tuple(getattr(strategy, "universe", ()) or ())
        if getattr(strategy, "cross_sectional", ()) and set(trained) != set(symbols):
            raise ConfigError(
                f"--model {strategy.model_id}: its cross-sectional features rank each symbol among "
                f"{', '.join(trained) or 'an unrecorded universe'}; this book is {', '.join(symbols)}, "
                "where those ranks mean something else: trade it over the symbols it was trained on, "
                "or train one over these (--cross-sectional)"
            )
