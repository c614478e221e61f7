"""What a backtest hears from its engine without a journal: its fills, and what the gates refused.

The fills make the round trips; the refusals are counted by stage and reason. The guardrails'
verdicts on entries also say whether they stopped all entries for good: every entry they refused
since the last one they let through.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from labkit.analysis.trips import fill_trips, reason_code
from labkit.data.bars import ts_ms
from labkit.engine.observer import Observer
from labkit.gates.base import BUY, Block
from labkit.timeutil import iso_s

GUARDRAILS = "guardrails"


class BacktestRecord(Observer):
    """The fills and refusals of one backtest, as the engine reports them.

    `entry_chain` is the engine's chain for entries (stage names in chain order): the guardrails
    judged an entry when every gate before them passed it.

    Only numbers and strings are kept: an object kept alive per fill or refusal would make every
    garbage collection of a long run slower.
    """

    def __init__(self, entry_chain: Sequence[str]) -> None:
        # Each fill's bar open, side (1 BUY, 0 SELL), units, price, fee and slippage cost, one after
        # the other in one list: a run of tens of thousands of fills appends once per fill.
        self.fills: list[float] = []
        self.refusals: Counter[tuple[str, str]] = Counter()  # by stage and reason as given
        self._place = {stage: k for k, stage in enumerate(entry_chain)}
        self._guardrails = self._place.get(GUARDRAILS)
        # The guardrails' refusals since the last entry they let through: the first one's bar, by reason.
        self.halt_since: int | None = None
        self.halt_reasons: Counter[str] = Counter()

    def on_fill(self, ts: int, fill: Mapping[str, Any]) -> None:
        side = fill["side"] == BUY
        self.fills += (ts, side, fill["units"], fill["price"], fill["fee"], fill["slippage_cost"])

    def on_verdict(self, ts: int, proposed: str, block: Block | None) -> None:
        if block is not None:
            self.refusals[block.stage, block.reason] += 1
        if proposed != BUY or self._guardrails is None:
            return
        if block is None or self._place.get(block.stage, -1) > self._guardrails:
            self.halt_since = None  # the guardrails let this entry through
            self.halt_reasons.clear()
        elif block.stage == GUARDRAILS:
            if self.halt_since is None:
                self.halt_since = ts
            self.halt_reasons[block.reason] += 1

    def round_trips(self, times: pd.DatetimeIndex) -> tuple[pd.DataFrame, pd.Timestamp | None]:
        """Return the closed round trips and when the position still open at the end was entered.

        `times` are the opens of the bars run, the fills' bars among them.
        """
        fills = self.fills
        opens = ts_ms(pd.DataFrame(index=times))
        at = times.take(np.searchsorted(opens, np.array(fills[0::6], dtype="int64")))
        buy = np.array(fills[1::6], dtype=bool)
        units, price, fee, slippage = (np.array(fills[j::6], dtype="float64") for j in range(2, 6))
        trips = fill_trips(pd.Series(at), buy, units, price, fee, slippage)
        # A position open at the end was entered by the first BUY after the last SELL.
        sells = np.flatnonzero(~buy)
        first = int(sells[-1]) + 1 if len(sells) else 0
        open_since = at[first] if first < len(buy) else None
        return trips, open_since

    def blocks(self) -> Counter[tuple[str, str]]:
        """Return the refusals by (stage, reason code)."""
        return _by_code(self.refusals)

    def halt(self, times: pd.DatetimeIndex) -> dict[str, Any] | None:
        """Return when the guardrails began refusing every entry to the end of the run, or None.

        ``first_ts`` is the first refusal after the last entry they let through, ``bars`` the bars
        from it to the end, ``blocks`` the entries refused since, ``reasons`` by reason code.
        """
        if self.halt_since is None:
            return None
        first = int(np.searchsorted(ts_ms(pd.DataFrame(index=times)), self.halt_since))
        reasons = _by_code(Counter({(GUARDRAILS, r): n for r, n in self.halt_reasons.items()}))
        return {
            "first_ts": iso_s(self.halt_since),
            "bars": len(times) - first,
            "blocks": sum(self.halt_reasons.values()),
            "reasons": {reason: n for (_, reason), n in reasons.items()},
        }

    def summary(self, times: pd.DatetimeIndex) -> dict[str, Any]:
        """Return ``blocked`` (how many), ``blocks`` (by stage and reason, most first), ``guardrail_halt``."""
        counts = sorted(self.blocks().items(), key=lambda kv: (-kv[1], kv[0]))
        return {
            "blocked": sum(n for _, n in counts),
            "blocks": [{"stage": stage, "reason": reason, "count": n} for (stage, reason), n in counts],
            "guardrail_halt": self.halt(times),
        }


def _by_code(raw: Counter[tuple[str, str]]) -> Counter[tuple[str, str]]:
    # Fold reasons into their codes (insufficient_data:12 -> insufficient_data) once per distinct reason.
    counts: Counter[tuple[str, str]] = Counter()
    for (stage, reason), n in raw.items():
        counts[stage, reason_code(reason) or ""] += n
    return counts
