"""A circuit breaker for calls on a dependency that may fail for a while (the Java service).

closed → (`failure_threshold` failures in a row) → open: calls fail at once for `open_seconds` → half-open:
one call goes through as a probe; its success closes the circuit, its failure opens it again. Callers that
have older data answer from it instead of waiting on a dependency known to be failing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpen(Exception):
    """Raised instead of calling while the circuit is open; `retry_after` is when a probe may go."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"circuit open; next try in {retry_after:.1f} s")
        self.retry_after = retry_after


class CircuitBreaker:
    def __init__(
        self,
        *,
        failure_threshold: int = 3,
        open_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[CircuitState], None] | None = None,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.open_seconds = open_seconds
        self.clock = clock
        self.on_change = on_change
        self.failures = 0
        self._state = CircuitState.CLOSED
        self._opened_at = 0.0
        self._probing = False

    @property
    def state(self) -> CircuitState:
        if self._state == CircuitState.OPEN and self.clock() - self._opened_at >= self.open_seconds:
            return CircuitState.HALF_OPEN
        return self._state

    def before_call(self) -> None:
        """Raise `CircuitOpen` unless a call may go now (closed, or the one probe of a half-open circuit)."""
        state = self.state
        if state == CircuitState.CLOSED:
            return
        if state == CircuitState.HALF_OPEN and not self._probing:
            self._probing = True
            return
        raise CircuitOpen(max(self.open_seconds - (self.clock() - self._opened_at), 0.0))

    def released(self) -> None:
        """The call ended without telling (cancelled): let another probe go."""
        self._probing = False

    def succeeded(self) -> None:
        self.failures = 0
        self._probing = False
        self._set(CircuitState.CLOSED)

    def failed(self) -> None:
        self.failures += 1
        was_probe, self._probing = self._probing, False
        if was_probe or self.failures >= self.failure_threshold:
            self._opened_at = self.clock()
            self._set(CircuitState.OPEN)

    def _set(self, state: CircuitState) -> None:
        if state != self._state:
            self._state = state
            if self.on_change is not None:
                self.on_change(state)
