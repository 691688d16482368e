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
