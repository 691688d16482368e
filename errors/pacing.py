"""Batch sizes that follow how long each batch takes, so that every transaction of a long
clean-up stays short on a busy machine as on a quiet one."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Pace:
    """The size of the next batch: halved after a batch slower than the target, grown by
    half after one under half the target, between 1 and `largest`."""

    largest: int
    target_ms: float
    size: int = 0
    slowest_ms: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self.largest = max(1, self.largest)
        self.size = min(self.largest, max(1, self.size or self.largest))

    @contextmanager
    def batch(self) -> Iterator[int]:
        """Times one batch of `size` rows (the block's transaction) and sets the next size."""
        start = time.perf_counter()
        yield self.size
        self.took((time.perf_counter() - start) * 1000)

    def took(self, ms: float) -> None:
        self.slowest_ms = max(self.slowest_ms, ms)
        if ms > self.target_ms:
            self.size = max(1, self.size // 2)
        elif ms < self.target_ms / 2:
            self.size = min(self.largest, self.size + max(1, self.size // 2))
