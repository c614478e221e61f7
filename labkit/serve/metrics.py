"""``GET /metrics``: each session's figures in Prometheus's text format, read from the home per scrape.

A fresh registry per scrape holds one collector that yields what the session files say now: the
status `labkit status` shows, and the journal's counts, read incrementally (`JournalViews`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from labkit.analysis.formatting import is_number
from labkit.serve.journals import Counts

# A session counts as up while its process runs and beats (halted ones too: they still decide).
UP_WORDS = frozenset({"running", "halted"})


def families(sessions: Iterable[tuple[dict[str, Any], Counts, float | None, bool]]) -> list[Metric]:
    """Return the metric families of the sessions: (status, journal counts, heartbeat age, stale) each.

    `stale` is whether ``/health`` names the session (its process stuck or gone).
    """
    label = ["session"]
    decisions = CounterMetricFamily("labkit_decisions", "Decisions in the session's journal", labels=label)
    blocks = CounterMetricFamily(
        "labkit_blocks",
        "Decisions a gate blocked, by stage and reason code (without its detail suffix)",
        labels=["session", "stage", "reason"],
    )
    data_errors = CounterMetricFamily(
        "labkit_data_errors", "Decisions held for stale_data or data_unavailable", labels=label
    )
    equity = GaugeMetricFamily("labkit_equity", "Equity at the last decision, quote currency", labels=label)
    position = GaugeMetricFamily("labkit_position", "Units held at the last decision", labels=label)
    # A book's positions, one series per symbol (labkit_position stays one symbol's).
    held = GaugeMetricFamily(
        "labkit_book_position",
        "Units of each symbol a book held at its last decision",
        labels=["session", "symbol"],
    )
    age = GaugeMetricFamily("labkit_heartbeat_age_seconds", "Seconds since the last heartbeat", labels=label)
    up = GaugeMetricFamily(
        "labkit_session_up", "1 while its process runs and beats (status running or halted)", labels=label
    )
    stale = GaugeMetricFamily(
        "labkit_session_stale", "1 while /health names the session: its process stuck or gone", labels=label
    )
    halted = GaugeMetricFamily("labkit_halted", "1 while the session is halted", labels=label)
    for status, counts, beat_age, is_stale in sessions:
        name = str(status["session"])
        decisions.add_metric([name], counts.decisions)
        data_errors.add_metric([name], counts.data_errors)
        for (stage, reason), count in sorted(counts.blocks.items()):
            blocks.add_metric([name, stage, reason], count)
        if is_number(status.get("equity")):
            equity.add_metric([name], float(status["equity"]))
        if is_number(status.get("position")):
            position.add_metric([name], float(status["position"]))
        for symbol, units in (status.get("positions") or {}).items():
            if is_number(units):
                held.add_metric([name, str(symbol)], float(units))
        if beat_age is not None:
            age.add_metric([name], beat_age)
        up.add_metric([name], 1.0 if status.get("status_word") in UP_WORDS else 0.0)
        stale.add_metric([name], 1.0 if is_stale else 0.0)
        halted.add_metric([name], 1.0 if status.get("halted") else 0.0)
    return [decisions, blocks, data_errors, equity, position, held, age, up, stale, halted]


class Snapshot:
    """A collector of metric families already computed: registered in a registry made per scrape."""

    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return iter(self.metrics)


def exposition(metrics: list[Metric]) -> bytes:
    """Return `metrics` in Prometheus's text format."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Snapshot(metrics))
    return generate_latest(registry)
