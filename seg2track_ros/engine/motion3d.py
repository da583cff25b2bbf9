"""Per-track 3-D constant-velocity Kalman filters, stepped by time stamps.

ROS-free. State (x, y, z, vx, vy, vz) in the camera optical frame, metres and m/s.

The filter is a small linear Kalman filter written here in numpy rather than taken from
``filterpy``: the model is six states with a linear measurement, the whole filter is a
dozen lines of matrix algebra, and numpy is already a dependency, while filterpy would
add a package (with no rosdep key, hence another pip line for ROS users) for these
few lines. The equations are the textbook ones (predict: x = F x, P = F P F' + Q;
update with the Joseph form P = (I - K H) P (I - K H)' + K R K', which stays symmetric
and positive definite).

- Time step: ``dt`` is the difference of the frames' stamps in seconds, never a frame
  count, so dropped frames and jittery rates give the right velocity.
- Process noise: white acceleration with spectral density ``process_noise``
  (m^2/s^3) per axis, Q = q [[dt^3/3, dt^2/2], [dt^2/2, dt]] per axis.
- Measurement noise: the 3-D centre measured from a mask has a standard deviation of
  ``measurement_noise`` times its range plus ``measurement_noise_floor`` metres per
  axis (depth error grows with range).
- A new track starts at its first measurement with zero velocity and a velocity
  standard deviation of ``initial_velocity_std``.
- A track that has no valid measurement on a frame keeps its state and is predicted
  over the whole gap when its next measurement comes; it has no output on that frame.
- A track that is not active any more (ended, removed) is forgotten. A stamp earlier
  than the track's last one (a replay restarted) restarts that track's filter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seg2track_ros.engine.types import InvalidInputError


@dataclass(frozen=True)
class MotionConfig:
    """Constant-velocity filter settings (ROS parameters of the same names)."""

    process_noise: float = 1.0
    measurement_noise: float = 0.02
    measurement_noise_floor: float = 0.05
    initial_velocity_std: float = 10.0

    def validate(self) -> None:
        for name in (
            "process_noise",
            "measurement_noise",
            "measurement_noise_floor",
            "initial_velocity_std",
        ):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise InvalidInputError(f"{name} must be a finite number >= 0, got {value}")
        if self.measurement_noise == 0 and self.measurement_noise_floor == 0:
            raise InvalidInputError(
                "measurement_noise and measurement_noise_floor cannot both be 0"
            )


@dataclass(frozen=True)
class TrackState3D:
    """One track's filtered 3-D state at a stamp: position (3,), velocity (3,) and the
    6x6 covariance of (x, y, z, vx, vy, vz)."""

    track_id: int
    position: np.ndarray
    velocity: np.ndarray
    covariance: np.ndarray


class _Filter:
    def __init__(self, position: np.ndarray, stamp: float, r: np.ndarray, config: MotionConfig):
        self.x = np.concatenate([position, np.zeros(3)])
        self.p = np.zeros((6, 6))
        self.p[:3, :3] = r
        self.p[3:, 3:] = np.eye(3) * config.initial_velocity_std**2
        self.stamp = stamp

    def predict(self, dt: float, q: float) -> None:
        if dt <= 0:
            return
        f = np.eye(6)
        f[:3, 3:] = np.eye(3) * dt
        block = np.array([[dt**3 / 3, dt**2 / 2], [dt**2 / 2, dt]]) * q
        qm = np.kron(block, np.eye(3))
        self.x = f @ self.x
        self.p = f @ self.p @ f.T + qm

    def update(self, z: np.ndarray, r: np.ndarray) -> None:
        h = np.hstack([np.eye(3), np.zeros((3, 3))])
        s = h @ self.p @ h.T + r
        k = np.linalg.solve(s, h @ self.p).T  # P H' S^-1 (S symmetric)
        self.x = self.x + k @ (z - h @ self.x)
        i_kh = np.eye(6) - k @ h
        self.p = i_kh @ self.p @ i_kh.T + k @ r @ k.T


class MotionFilters:
    """The constant-velocity filters of one tracker's tracks (ids belong to this one)."""

    def __init__(self, config: MotionConfig | None = None) -> None:
        self.config = config or MotionConfig()
        self.config.validate()
        self._filters: dict[int, _Filter] = {}

    def __len__(self) -> int:
        return len(self._filters)

    def _noise(self, position: np.ndarray) -> np.ndarray:
        rng = float(np.linalg.norm(position))
        sigma = self.config.measurement_noise * rng + self.config.measurement_noise_floor
        return np.eye(3) * sigma**2

    def update(
        self,
        stamp: float,
        measurements: dict[int, np.ndarray],
        active_ids,
    ) -> dict[int, TrackState3D]:
        """Step to ``stamp`` (seconds) with each measured track's centre (3,).

        ``active_ids``: every track id still alive this frame (measured or not); filters
        of the others are forgotten. Returns the filtered state of each measured track.
        """
        if not np.isfinite(stamp):
            raise InvalidInputError(f"stamp must be finite, got {stamp}")
        active = {int(t) for t in active_ids}
        for gone in set(self._filters) - active:
            del self._filters[gone]
        out: dict[int, TrackState3D] = {}
        for track_id, centre in measurements.items():
            track_id = int(track_id)
            z = np.asarray(centre, dtype=np.float64).reshape(3)
            if not np.isfinite(z).all():
                raise InvalidInputError(f"track {track_id}: measurement {z} is not finite")
            r = self._noise(z)
            flt = self._filters.get(track_id)
            if flt is None or stamp < flt.stamp:
                flt = self._filters[track_id] = _Filter(z, stamp, r, self.config)
            else:
                flt.predict(stamp - flt.stamp, self.config.process_noise)
                flt.update(z, r)
                flt.stamp = stamp
            if track_id in active:
                out[track_id] = TrackState3D(
                    track_id, flt.x[:3].copy(), flt.x[3:].copy(), flt.p.copy()
                )
            else:
                del self._filters[track_id]
        return out
