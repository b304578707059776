"""Waiting, with a deadline, for what a peer's threads record under a condition variable."""

from __future__ import annotations

import threading
import time
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_on(cond: threading.Condition, predicate: Callable[[], T], timeout: float,
            failure: Callable[[], str], step: float = 0.05) -> T:
    """Wait until `predicate()` (called with `cond` held, again at each notify and every `step`
    seconds) is truthy and return its value; after `timeout` seconds raise
    AssertionError(failure())."""
    deadline = time.monotonic() + timeout
    with cond:
        while True:
            value = predicate()
            if value:
                return value
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(failure())
            cond.wait(timeout=min(left, step))
