"""Framework-free helpers for timing code and summing running metrics.

``Timer`` and ``Accumulator`` keep the public names and methods of the ``d2l``
package so that book code written for it runs unchanged.
"""

from time import perf_counter

__all__ = ['Timer', 'Accumulator']


class Timer:
    """Record the durations of several intervals, in seconds.

    The timer starts as soon as it is created; every call to :meth:`stop`
    closes the current interval and records it.
    """

    def __init__(self):
        self.times = []
        self.start()

    def start(self):
        """Begin a new interval now."""
        self._started_at = perf_counter()

    def stop(self):
        """End the current interval, record it and return its length."""
        elapsed = perf_counter() - self._started_at
        self.times.append(elapsed)
        return elapsed

    def avg(self):
        """Mean length of the recorded intervals (0.0 when none yet)."""
        if not self.times:
            return 0.0
        return self.sum() / len(self.times)

    def sum(self):
        """Total length of the recorded intervals."""
        return float(sum(self.times))

    def cumsum(self):
        """Running totals of the recorded intervals, as a list of floats."""
        totals, running = [], 0.0
        for interval in self.times:
            running += interval
            totals.append(running)
        return totals


class Accumulator:
    """Keep ``n`` running sums, e.g. total loss and number of examples."""

    def __init__(self, n):
        if n < 1:
            raise ValueError(f'Accumulator needs at least one slot, got n={n}')
        self.data = [0.0] * n

    def add(self, *args):
        """Add one value to each slot; there must be exactly ``n`` values.

        Values may be Python numbers or NumPy scalars / 0-d arrays; they are
        converted with ``float`` so the sums stay plain Python floats.
        """
        if len(args) != len(self.data):
            raise ValueError(
                f'Accumulator.add expects {len(self.data)} values, '
                f'got {len(args)}')
        self.data = [total + float(value)
                     for total, value in zip(self.data, args)]

    def reset(self):
        """Set every slot back to zero."""
        self.data = [0.0] * len(self.data)

    def __getitem__(self, idx):
        return self.data[idx]

    def __len__(self):
        return len(self.data)
