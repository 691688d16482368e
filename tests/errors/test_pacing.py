"""Batch sizes follow how long batches take, within their bounds."""

from errors.pacing import Pace


def test_a_slow_batch_halves_the_next_and_quick_ones_grow_it_back_to_the_largest():
    pace = Pace(largest=1000, target_ms=100)
    assert pace.size == 1000
    pace.took(250)
    assert pace.size == 500
    pace.took(80)  # near the target: kept
    assert pace.size == 500
    pace.took(20)
    assert pace.size == 750
    for _ in range(5):
        pace.took(1)
    assert pace.size == 1000
    assert pace.slowest_ms == 250


def test_the_size_never_falls_below_one_and_starts_where_asked():
    pace = Pace(largest=50, target_ms=10, size=4)
    assert pace.size == 4
    for _ in range(5):
        pace.took(1000)
    assert pace.size == 1
    pace.took(0)
    assert pace.size == 2
    assert Pace(largest=0, target_ms=10).size == 1
    assert Pace(largest=10, target_ms=10, size=99).size == 10


def test_a_batch_is_timed_by_its_block(monkeypatch):
    moments = iter([10.0, 10.5])
    monkeypatch.setattr("errors.pacing.time.perf_counter", lambda: next(moments))
    pace = Pace(largest=100, target_ms=100)
    with pace.batch() as size:
        assert size == 100
    assert pace.slowest_ms == 500
    assert pace.size == 50


def test_a_batch_reads_its_wal_meter_once_it_is_done():
    started = []

    def meter():
        started.append(True)
        return lambda: 16_000_000  # 4,000 rows wrote 16 MB: 2,000 fit in 8 MB

    pace = Pace(largest=10_000, target_ms=10_000, size=4000, wal_bytes=8_000_000)
    with pace.batch(meter) as size:
        assert size == 4000 and started == [True]
    assert pace.most_wal_bytes == 16_000_000
    assert pace.size == 2000


def test_the_wal_a_batch_wrote_caps_the_next_so_its_commit_flushes_no_more_than_the_budget():
    pace = Pace(largest=10_000, target_ms=100, size=4000, wal_bytes=8_000_000)
    # Quick, but 4,000 rows wrote 16 MB: at 4 kB a row, 2,000 rows fit in 8 MB.
    pace.took(20, wal_bytes=16_000_000)
    assert pace.size == 2000
    assert pace.most_wal_bytes == 16_000_000
    # Under the budget and quick: grows as time allows, never past what the budget holds.
    pace.took(20, wal_bytes=7_000_000)  # 3.5 kB a row: 2,285 fit
    assert pace.size == 2285
    # Slow and over budget: the smaller of the two.
    pace.took(500, wal_bytes=64_000_000)
    assert pace.size == 1142
    # Without a measure, or without a budget, time alone decides.
    alone = Pace(largest=10_000, target_ms=100, size=4000)
    alone.took(20, wal_bytes=10**12)
    assert alone.size == 6000


def test_wal_that_other_sessions_wrote_meanwhile_does_not_shrink_the_batches_for_good():
    pace = Pace(largest=10_000, target_ms=100, size=1000, wal_bytes=8_000_000)
    pace.took(20, wal_bytes=1_000_000)  # 1 kB a row: its own
    assert pace.size == 1500
    # Another session wrote 80 MB during the next batch: the batch's own WAL per row is
    # still the 1 kB seen, so the cap stays at 8,000 rows and time decides.
    pace.took(20, wal_bytes=80_000_000)
    assert pace.size == 2250
    # Once the batches that showed it are out of the window, the cap follows what is seen.
    for _ in range(8):
        pace.took(20, wal_bytes=pace.size * 4000)
    assert pace.size == 2000
