"""Tests for d2l_shim.timing (framework-free)."""

import time

import pytest

from d2l_shim import timing
from d2l_shim.timing import Accumulator, Timer


class FakeClock:
    """A perf_counter stand-in that advances only when told to."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(timing, 'perf_counter', fake)
    return fake


def test_timer_records_intervals(clock):
    timer = Timer()  # starts at construction
    clock.now += 1.5
    assert timer.stop() == pytest.approx(1.5)
    timer.start()
    clock.now += 0.5
    assert timer.stop() == pytest.approx(0.5)
    assert timer.times == pytest.approx([1.5, 0.5])
    assert timer.sum() == pytest.approx(2.0)
    assert timer.avg() == pytest.approx(1.0)
    assert timer.cumsum() == pytest.approx([1.5, 2.0])
    assert isinstance(timer.cumsum(), list)


def test_stop_without_start_measures_from_previous_start(clock):
    timer = Timer()
    clock.now += 1.0
    timer.stop()
    clock.now += 2.0
    # No start() in between: the interval still runs from the last start.
    assert timer.stop() == pytest.approx(3.0)


def test_empty_timer_statistics():
    timer = Timer()
    assert timer.sum() == 0.0
    assert timer.avg() == 0.0
    assert timer.cumsum() == []


def test_timer_uses_real_clock():
    timer = Timer()
    time.sleep(0.01)
    elapsed = timer.stop()
    assert 0.005 < elapsed < 5


def test_accumulator_sums_python_numbers():
    acc = Accumulator(3)
    acc.add(1, 2.5, 3)
    acc.add(1, 0.5, -3)
    assert [acc[0], acc[1], acc[2]] == [2.0, 3.0, 0.0]
    assert acc[0:2] == [2.0, 3.0]
    assert len(acc) == 3


def test_accumulator_accepts_numpy_scalars():
    np = pytest.importorskip('numpy')
    acc = Accumulator(2)
    acc.add(np.float32(1.5), np.int64(4))
    acc.add(np.array(0.5), np.float64(1))
    assert acc[0] == pytest.approx(2.0)
    assert acc[1] == pytest.approx(5.0)
    assert type(acc[0]) is float


def test_accumulator_reset():
    acc = Accumulator(2)
    acc.add(3, 4)
    acc.reset()
    assert [acc[0], acc[1]] == [0.0, 0.0]


def test_accumulator_rejects_wrong_number_of_values():
    acc = Accumulator(2)
    with pytest.raises(ValueError, match='expects 2 values, got 3'):
        acc.add(1, 2, 3)


def test_accumulator_needs_a_slot():
    with pytest.raises(ValueError):
        Accumulator(0)
