"""Batch sizes that follow how long each batch takes, and how much WAL it writes, so that
every transaction of a long clean-up stays short on a busy machine as on a quiet one."""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

# How many of the last batches' WAL per row the cap looks at.
WAL_WINDOW = 8


@dataclass
class Pace:
    """The size of the next batch: halved after a batch slower than the target, grown by
    half after one under half the target, between 1 and `largest`.

    With a WAL budget (`wal_bytes`, what the server flushes in about the target time), the
    WAL of the batches caps the next one too: a commit waits for its WAL to reach the disk, a
    wait that comes after the batch's own statements and that their time cannot foresee. The
    next size is at most the rows the budget holds at the fewest bytes per row of the last
    WAL_WINDOW batches: the WAL measured is the server's, and what other sessions wrote
    meanwhile only adds to a batch's own, so the fewest is the closest to it (a batch cannot
    make the others write less)."""

    largest: int
    target_ms: float
    size: int = 0
    wal_bytes: int = 0
    slowest_ms: float = field(default=0.0, init=False)
    most_wal_bytes: int = field(default=0, init=False)
    wal_per_row: list[float] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.largest = max(1, self.largest)
        self.size = min(self.largest, max(1, self.size or self.largest))

    @contextmanager
    def batch(self, wal_meter: Callable[[], Callable[[], int]] | None = None) -> Iterator[int]:
        """Times one batch of `size` rows (the block's transaction, its commit included) and
        sets the next size. `wal_meter`, when given, starts a measure of the WAL written and
        returns what reads it once the batch is done."""
        written = wal_meter() if wal_meter else None
        start = time.perf_counter()
        yield self.size
        self.took((time.perf_counter() - start) * 1000, written() if written else None)

    def took(self, ms: float, wal_bytes: int | None = None) -> None:
        """The last batch of `size` rows took `ms` and wrote `wal_bytes` of WAL (None: not
        measured)."""
        done = self.size
        self.slowest_ms = max(self.slowest_ms, ms)
        if ms > self.target_ms:
            self.size = max(1, self.size // 2)
        elif ms < self.target_ms / 2:
            self.size = min(self.largest, self.size + max(1, self.size // 2))
        if wal_bytes and self.wal_bytes:
            self.most_wal_bytes = max(self.most_wal_bytes, wal_bytes)
            self.wal_per_row = [*self.wal_per_row, wal_bytes / done][-WAL_WINDOW:]
            # Rows that fit in the budget; a batch over it is cut to that at once, not
            # halved step by step.
            fits = max(1, int(self.wal_bytes / min(self.wal_per_row)))
            self.size = min(self.size, fits)
