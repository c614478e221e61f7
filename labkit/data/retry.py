"""Surviving flaky sources: retries with capped exponential backoff and jitter, and a circuit breaker.

Retries use tenacity. A failure can carry the server's Retry-After (seconds), which the wait honours.
The breaker is per source: after `threshold` failed operations in a row it opens and every call fails
at once (no request is sent) until `cooldown` has passed; then one probe is let through, and its
success closes the breaker again.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from labkit.errors import SourceUnavailableError

if TYPE_CHECKING:  # tenacity loads where a request is retried, not with every config (issue 17)
    from tenacity import RetryCallState

T = TypeVar("T")


class TransientError(Exception):
    """A failure worth retrying; `retry_after` is the server's requested wait, if it gave one."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def backoff_wait(
    base: float, cap: float, rng: random.Random | None = None
) -> Callable[[RetryCallState], float]:
    """Return a tenacity wait: full-jitter exponential backoff, at least the Retry-After asked for."""
    rng = rng or random.Random()

    def wait(state: RetryCallState) -> float:
        exponential = min(cap, base * 2 ** (state.attempt_number - 1))
        delay = rng.uniform(exponential / 2, exponential)
        exc = state.outcome.exception() if state.outcome else None
        asked = getattr(exc, "retry_after", None)
        return min(cap, max(delay, float(asked))) if asked else delay

    return wait


def with_retries(
    call: Callable[[], T],
    attempts: int,
    base: float,
    cap: float,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[RetryCallState], None] | None = None,
) -> T:
    """Run `call`, retrying TransientError up to `attempts` tries in all; re-raise the last failure."""
    from tenacity import Retrying, retry_if_exception, stop_after_attempt

    retrying = Retrying(
        stop=stop_after_attempt(attempts),
        wait=backoff_wait(base, cap),
        retry=retry_if_exception(lambda e: isinstance(e, TransientError)),
        sleep=sleep,
        reraise=True,
        before_sleep=on_retry,
    )
    return retrying(call)


class CircuitBreaker:
    """Open after `threshold` failed operations in a row; probe again after `cooldown` seconds."""

    def __init__(
        self,
        name: str,
        threshold: int = 3,
        cooldown: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.threshold = threshold
        self.cooldown = cooldown
        self.clock = clock
        self.failures = 0
        self.opened_at: float | None = None

    @property
    def is_open(self) -> bool:
        return self.opened_at is not None and self.clock() - self.opened_at < self.cooldown

    def call(self, operation: Callable[[], T]) -> T:
        """Run `operation` unless the breaker is open; count its failure or success."""
        if self.is_open:
            raise SourceUnavailableError(
                f"{self.name}: unavailable, circuit open after {self.failures} failures in a row; "
                f"next try in {self.cooldown - (self.clock() - (self.opened_at or 0)):.0f} s"
            )
        try:
            result = operation()
        except (TransientError, SourceUnavailableError):
            self.failures += 1
            if self.failures >= self.threshold:
                self.opened_at = self.clock()
            raise
        self.failures, self.opened_at = 0, None
        return result


class DataConfig(BaseModel):
    # An infinite wait is a hang: waits are finite and at most an hour (a day for the breaker).
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    retries: int = Field(6, ge=1, le=50, description="tries per request (6 survives 5 failures in a row)")
    backoff_base: float = Field(
        0.5, gt=0, le=3600, description="seconds before the first retry; doubles each time"
    )
    backoff_cap: float = Field(
        30.0, gt=0, le=3600, description="longest wait between tries, Retry-After included"
    )
    live_retries: int = Field(2, ge=1, le=10, description="tries per request in a clock-paced session")
    breaker_threshold: int = Field(
        3, ge=1, le=1000, description="failed operations in a row that open the circuit"
    )
    breaker_cooldown: float = Field(
        30.0, gt=0, le=86_400, description="seconds before an open circuit is probed"
    )
    page_limit: int = Field(1000, ge=1, le=5000, description="bars asked per request")
