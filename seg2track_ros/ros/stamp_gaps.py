"""Counting images lost on the way from the gaps in their stamps (ROS-free).

With best-effort QoS a camera's images can vanish (large images over a lossy link, a
busy host) and nothing reports it: the node sees fewer images, not errors. A camera
stamps its images at a steady rate, so a gap of k periods between consecutive stamps
means k - 1 images that never arrived. The period is the configured rate's, or, when
the rate is unknown (0), the median of the recent periods (robust to the gaps
themselves while fewer than half the recent periods are gaps).
"""

from __future__ import annotations

import collections
import statistics


class StampGapCounter:
    """Images missing between stamps; ``add(stamp_ns)`` per received image.

    A gap counts when the stamp advances by more than ``tolerance`` periods; it then
    counts ``round(gap / period) - 1`` images. A stamp that goes backwards (a looping
    bag, a restarted driver) starts afresh; a repeated stamp is ignored.
    """

    def __init__(
        self,
        expected_rate_hz: float = 0.0,
        window: int = 30,
        min_periods: int = 10,
        tolerance: float = 1.5,
    ) -> None:
        if expected_rate_hz < 0:
            raise ValueError(f"expected_rate_hz must be >= 0, got {expected_rate_hz}")
        self._fixed_period_ns = 1e9 / expected_rate_hz if expected_rate_hz > 0 else None
        self._periods: collections.deque[int] = collections.deque(maxlen=window)
        self._min_periods = min_periods
        self._tolerance = tolerance
        self._last_ns: int | None = None
        self.missed = 0  # images inferred missing so far
        self.gaps = 0  # gaps seen (a gap may hide several images)

    @property
    def period_ns(self) -> float | None:
        """The period gaps are measured in; None while it is not known yet."""
        if self._fixed_period_ns is not None:
            return self._fixed_period_ns
        if len(self._periods) < self._min_periods:
            return None
        return float(statistics.median(self._periods))

    def add(self, stamp_ns: int) -> int:
        """Record an image's stamp; returns the images missing just before it."""
        last, self._last_ns = self._last_ns, stamp_ns
        if last is None:
            return 0
        if stamp_ns < last:
            self._periods.clear()
            return 0
        delta = stamp_ns - last
        if delta == 0:
            return 0
        period = self.period_ns
        self._periods.append(delta)
        if period is None or delta <= self._tolerance * period:
            return 0
        missing = max(round(delta / period) - 1, 1)
        self.missed += missing
        self.gaps += 1
        return missing

    def reset(self) -> None:
        self._periods.clear()
        self._last_ns = None
