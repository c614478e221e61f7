"""The paper book: cash, a long-only position, the counters gates read, and paper fills.

The book is what the engine owns: money and position, the order waiting for the next open, the
daily counters and halt flags the gates read, and how far the journal got (``last_seq``,
``last_ts``). A session's files add how far its control log and journal were applied
(`labkit.session.state.SessionState`).

Fills: an order decided at bar t's close fills at bar t+1's open; slippage moves
the price against us; the fee is a fraction of the fill's notional at entry and at exit. Cash never
goes negative and there is no leverage.

Exits the engine enforces (`labkit.engine.core`; stop-loss, take-profit, trailing and time stops) are
part of the book too: their levels, set when an entry fills from flat, are saved and resumed with
it. Such an exit fills on the bar that reached it, the entry's own bar included, and its fill's
``order_seq`` is that bar's own line; every other order fills on the bar after the line that
decided it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from labkit.strategies.sides import BUY, HOLD, SIDE_NAME
from labkit.timeutil import DAY_MS, parse_instant

# Fill reasons of the exits the engine enforces on a bar's range; `signal` is the strategy's order.
EXIT_REASONS = ("stop_loss", "take_profit", "trailing_stop", "time_stop")


@dataclass
class Portfolio:
    """The book of one session or backtest, as the engine leaves it after each bar."""

    cash: float
    position: float = 0.0
    avg_price: float = 0.0
    entry_cost: float = 0.0  # cash spent on the open position, fees included
    peak_equity: float = 0.0
    last_equity: float = 0.0
    day: int = -1  # UTC day number of the last bar decided
    day_start_equity: float = 0.0
    trades_today: int = 0
    loss_streak: int = 0
    halted: bool = False
    halt_reason: str | None = None
    reduce_only: bool = False
    pending_side: int = 0  # order decided at the last bar, to fill at the next open
    pending_seq: int = -1
    pending_reason: str | None = None  # set when the order came from a command, not a decision
    last_seq: int = -1
    last_ts: int | None = None  # open time of the last bar decided, epoch ms
    entries: int = 0
    exits: int = 0
    fees_paid: float = 0.0
    slippage_paid: float = 0.0
    realized_pnl: float = 0.0
    # The sized entry waiting for the open (None: all_in, sized at the fill) and the decision bar's ATR.
    pending_units: float | None = None
    pending_atr: float | None = None
    # Exit levels of the open position (None when off), and the seq of the line its entry filled on.
    stop_price: float | None = None
    take_profit_price: float | None = None
    trailing_price: float | None = None
    trailing_dist: float | None = None
    entry_seq: int = -1
    risk_today: float = 0.0  # units x stop distance of the UTC day's entries, in quote

    @classmethod
    def start(cls, capital: float) -> Portfolio:
        return cls(cash=capital, peak_equity=capital, last_equity=capital, day_start_equity=capital)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Portfolio:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def roll_day(self, day: int) -> None:
        """Enter UTC day number `day`: daily counters restart, and the day's loss is measured from here."""
        if day != self.day:
            self.day, self.day_start_equity = day, self.last_equity
            self.trades_today = self.loss_streak = 0
            self.risk_today = 0.0

    def fill(
        self,
        side: int,
        open_price: float,
        fee: float,
        slippage: float,
        position_frac: float,
        order_seq: int,
        *,
        units: float | None = None,
        reason: str = "signal",
    ) -> dict[str, Any] | None:
        """Fill an order at `open_price` (a bar's open, or an exit's level); return the fill record.

        An entry buys `units` when given (capped by the cash), else `position_frac` of the cash.
        Returns None when nothing could fill.
        """
        if side == 1:
            price = open_price * (1.0 + slippage)
            affordable = self.cash / (price * (1.0 + fee))
            if units is None:
                units = self.cash * position_frac / (price * (1.0 + fee))
            else:
                units = min(units, affordable)
            if not units > 0:
                return None
            notional = units * price
            fee_paid = notional * fee
            cost = min(notional + fee_paid, self.cash)  # rounding must never push cash below zero
            self.cash -= cost
            self.avg_price = (self.avg_price * self.position + notional) / (self.position + units)
            self.position += units
            self.entry_cost += cost
            self.entries += 1
            pnl = None
            cash_flow = -cost
        else:
            units = self.position
            if units <= 0:
                return None
            price = open_price * (1.0 - slippage)
            notional = units * price
            fee_paid = notional * fee
            proceeds = notional - fee_paid
            pnl = proceeds - self.entry_cost
            cash_flow = proceeds
            self.cash += proceeds
            self.position = 0.0
            self.avg_price = 0.0
            self.entry_cost = 0.0
            self.exits += 1
            self.realized_pnl += pnl
            self.loss_streak = self.loss_streak + 1 if pnl < 0 else 0
            self.clear_exits()
        slippage_cost = units * open_price * slippage
        self.fees_paid += fee_paid
        self.slippage_paid += slippage_cost
        record = {
            "side": SIDE_NAME[side],
            "units": units,
            "price": price,
            "fee": fee_paid,
            "slippage_cost": slippage_cost,
            "order_seq": order_seq,
            "pnl": pnl,
            "cash_flow": cash_flow,
            "reason": self.pending_reason or reason,
        }
        return record

    def clear_exits(self) -> None:
        self.stop_price = self.take_profit_price = self.trailing_price = self.trailing_dist = None
        self.entry_seq = -1

    def replay_line(self, line: dict[str, Any], high: float | None = None) -> None:
        """Bring the book forward by one journal line, as the engine did when it wrote the line.

        A crash can leave the journal ahead of ``state.json``; folding the extra lines in gives the
        exact book of an uninterrupted run without deciding those bars a second time. `high` is the
        bar's high (from the session's tape): the journal does not hold it, and a trailing stop
        ratchets on it.
        """
        fill = line.get("fill")
        ts = parse_instant(line["ts"])
        # The engine ratchets a trailing stop on every bar a position is held through but the bar
        # of a fill at the open that sold it (after the position's own stop was checked).
        ratchets = not fill or fill["side"] == BUY
        if fill:
            self.pending_side, self.pending_seq, self.pending_reason = 0, -1, None
            self.pending_units = self.pending_atr = None
        # The exit on the entry's own bar (`exit_fill`) follows its entry, as the engine filled them.
        position = self.position
        for one in (fill, line.get("exit_fill")):
            if one:
                self._fold_fill(one, position, line["seq"], ts // DAY_MS)
                position = position + one["units"] if one["side"] == BUY else 0.0
        self.roll_day(ts // DAY_MS)
        self.cash, self.position = line["cash"], line["position"]
        self.peak_equity = max(self.peak_equity, line["equity"])
        if line["action"] != HOLD:
            self.pending_side, self.pending_seq = (1 if line["action"] == BUY else -1), line["seq"]
            self.trades_today += line["action"] == BUY
            if line["action"] == BUY:
                detail = line["gate_trace"]["detail"]
                self.pending_units, self.pending_atr = detail.get("units"), detail.get("atr")
        if ratchets and high is not None and self.trailing_dist is not None and self.position > 0:
            level = high - self.trailing_dist
            if self.trailing_price is None or level > self.trailing_price:
                self.trailing_price = level
        self.last_equity = line["equity"]
        self.last_seq, self.last_ts = line["seq"], ts

    def _fold_fill(self, fill: dict[str, Any], position: float, seq: int, day: int) -> None:
        # One fill of a journal line, applied to the counters; cash and position come from the line.
        units, price = fill["units"], fill["price"]
        if fill["side"] == BUY:
            self.avg_price = (self.avg_price * position + units * price) / (position + units)
            self.entry_cost -= fill["cash_flow"]
            self.entries += 1
            if "stop_price" in fill or "take_profit_price" in fill or "trailing_price" in fill:
                self._arm_from(fill, seq, day)
        else:
            self.avg_price = self.entry_cost = 0.0
            self.exits += 1
            self.realized_pnl += fill["pnl"]
            self.loss_streak = self.loss_streak + 1 if fill["pnl"] < 0 else 0
            self.clear_exits()
        self.fees_paid += fill["fee"]
        self.slippage_paid += fill["slippage_cost"]

    def _arm_from(self, fill: dict[str, Any], seq: int, day: int) -> None:
        # The levels an entry's fill recorded; `replay_line` ratchets the trailing stop from there.
        self.stop_price = fill.get("stop_price")
        self.take_profit_price = fill.get("take_profit_price")
        self.trailing_price = fill.get("trailing_price")
        self.trailing_dist = None if self.trailing_price is None else fill["price"] - self.trailing_price
        self.entry_seq = seq
        if self.stop_price is not None:
            self.roll_day(day)
            self.risk_today += fill["units"] * (fill["price"] - self.stop_price)
