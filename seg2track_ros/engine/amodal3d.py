"""Amodal 3-D boxes: the whole object from the points of its visible surface.

A depth camera or a LiDAR sees only the faces of an object that look at the sensor, so
the median of a mask's points is the centre of those faces, not of the object: for a car
seen from behind it sits half a car length (about 2 m) in front of the car's centre.
Where the class's typical size is known (``ObjectSize``), ``amodal_box`` fits an
upright box of that size to the visible points:

1. **Heading.** The points' footprint on the ground plane (camera x and z; upright
   objects, a camera about level) is fitted with a rectangle at each yaw in [0, 90)
   degrees; the yaw whose rectangle edges the points lie closest to wins (the
   closeness criterion of L-shape fitting for laser scans, Zhang et al., "Efficient
   L-Shape Fitting for Vehicle Detection Using Laser Scanners", IEEE IV 2017). Written
   here with numpy: no maintained Python package provides it.
2. **Which side is which.** The class's length and width go to the two rectangle axes
   in the order that best matches what is seen on each axis (weighted by how much of
   the footprint lies along it): a car seen from behind shows its width, from the side
   its length.
3. **Completion.** Along each footprint axis the box keeps the rectangle edge nearest
   the sensor and extends away from the sensor to the class's size (never shrinking
   what is seen). Vertically it keeps the visible span's middle and grows to the
   class's height.

Everything is in the camera optical frame (x right, y down, z forward): the box's yaw
is a rotation about the camera's y axis, and its size is (across, height, along) in
the box's own axes, with ``size[2]`` the class's length axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Yaw candidates over [0, 90) degrees (a rectangle repeats every 90 degrees).
YAW_STEPS = 90
# Closeness floor (metres): points within this of an edge count as on it.
CLOSENESS_FLOOR_M = 0.01
# Points used for the heading search at most (a strided subset beyond it).
FIT_POINTS = 4000
# Points farther from the median than this times the class's footprint diagonal (or
# height, vertically) are not the object's.
OUTLIER_REACH = 1.5
# The footprint's edges span these percentiles of the points (robust to stray points).
EDGE_PERCENTILES = (1.0, 99.0)


class ObjectSizeError(ValueError):
    """An object size that is not three positive finite metres."""


@dataclass(frozen=True)
class ObjectSize:
    """A class's typical size in metres: ``length`` (along its heading), ``width``
    (across it) and ``height``."""

    length: float
    width: float
    height: float

    def __post_init__(self) -> None:
        values = (self.length, self.width, self.height)
        if not all(math.isfinite(v) and v > 0 for v in values):
            raise ObjectSizeError(f"object size must be three positive metres, got {values}")


@dataclass(frozen=True)
class AmodalBox:
    """An upright box in the camera optical frame: ``centre`` (3,), ``size`` (3,) as
    (across, height, along) in the box's axes, ``yaw`` (radians) about the camera's y
    axis: the box's along-axis is camera z rotated by ``yaw`` towards camera x."""

    centre: np.ndarray
    size: np.ndarray
    yaw: float


def parse_object_sizes(text: str) -> dict[str, ObjectSize]:
    """'car=3.9x1.6x1.5, pedestrian=0.8x0.6x1.8' (class=LENGTHxWIDTHxHEIGHT, metres)
    -> {class: ObjectSize}; '' -> {} (no amodal boxes). Raises ObjectSizeError."""
    sizes: dict[str, ObjectSize] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, sep, dims = item.partition("=")
        parts = dims.lower().split("x")
        if not sep or not name.strip() or len(parts) != 3:
            raise ObjectSizeError(
                f"object size {item!r} is not CLASS=LENGTHxWIDTHxHEIGHT (metres), e.g."
                " 'car=3.9x1.6x1.5'"
            )
        try:
            length, width, height = (float(p) for p in parts)
        except ValueError:
            raise ObjectSizeError(f"object size {item!r}: {dims!r} are not numbers") from None
        if name.strip() in sizes:
            raise ObjectSizeError(f"object size for {name.strip()!r} given twice")
        sizes[name.strip()] = ObjectSize(length, width, height)
    return sizes


def _heading(footprint: np.ndarray) -> float:
    """The yaw in [0, pi/2) whose rectangle edges the footprint points lie closest to."""
    if len(footprint) > FIT_POINTS:
        footprint = footprint[:: math.ceil(len(footprint) / FIT_POINTS)]
    yaws = np.arange(YAW_STEPS) * (np.pi / 2 / YAW_STEPS)
    # box axes in (x, z): across = (cos, -sin), along = (sin, cos)
    across = footprint @ np.stack([np.cos(yaws), -np.sin(yaws)])  # (N, YAW_STEPS)
    along = footprint @ np.stack([np.sin(yaws), np.cos(yaws)])
    distance = None
    for c in (across, along):
        low, high = np.percentile(c, EDGE_PERCENTILES, axis=0)
        d = np.minimum(np.abs(c - low), np.abs(high - c))
        distance = d if distance is None else np.minimum(distance, d)
    score = (1.0 / np.maximum(distance, CLOSENESS_FLOOR_M)).sum(axis=0)
    return float(yaws[int(np.argmax(score))])


def _complete(low: float, high: float, size: float) -> tuple[float, float]:
    """(centre, extent) along one footprint axis: the edge nearest the sensor (at 0)
    stays, the box reaches ``size`` away from the sensor; an axis whose span holds the
    sensor's coordinate grows evenly."""
    seen = high - low
    extent = max(seen, size)
    if low <= 0.0 <= high:
        return (low + high) / 2, extent
    if abs(low) <= abs(high):  # the low edge faces the sensor
        return low + extent / 2, extent
    return high - extent / 2, extent


def amodal_box(points: np.ndarray, prior: ObjectSize) -> AmodalBox:
    """The upright box of (at least) ``prior``'s size that the visible ``points``
    (N, 3), camera optical frame, are the sensor-facing surface of. See the module."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3 or len(points) == 0:
        raise ValueError(f"points must be (N, 3) with N > 0, got shape {points.shape}")
    # Points that cannot be on the object: farther from the visible surface's median than
    # the class's size allows (a LiDAR beside the camera sees past an object's edges,
    # so background points land inside its mask; the median is unmoved by them).
    centre = np.median(points, axis=0)
    reach = OUTLIER_REACH * math.hypot(prior.length, prior.width)
    near = (np.hypot(points[:, 0] - centre[0], points[:, 2] - centre[2]) <= reach) & (
        np.abs(points[:, 1] - centre[1]) <= OUTLIER_REACH * prior.height
    )
    if near.any():
        points = points[near]
    footprint = points[:, [0, 2]]
    yaw = _heading(footprint)
    across_axis = np.array([math.cos(yaw), -math.sin(yaw)])
    along_axis = np.array([math.sin(yaw), math.cos(yaw)])
    spans = [
        tuple(np.percentile(footprint @ axis, EDGE_PERCENTILES))
        for axis in (across_axis, along_axis)
    ]
    seen = np.array([high - low for low, high in spans])
    weights = seen / seen.sum() if seen.sum() > 0 else np.full(2, 0.5)

    def mismatch(sizes: tuple[float, float]) -> float:
        return float((weights * np.abs(seen - np.asarray(sizes))).sum())

    # which rectangle axis is the class's length: the order that fits what is seen
    length_along = mismatch((prior.width, prior.length)) <= mismatch((prior.length, prior.width))
    sizes = (prior.width, prior.length) if length_along else (prior.length, prior.width)
    (c_across, e_across), (c_along, e_along) = (
        _complete(low, high, size) for (low, high), size in zip(spans, sizes, strict=True)
    )
    x, z = c_across * across_axis + c_along * along_axis
    y_low, y_high = np.percentile(points[:, 1], EDGE_PERCENTILES)
    height = max(float(y_high - y_low), prior.height)
    if not length_along:  # turn the box a quarter so that its along-axis is the length
        yaw += math.pi / 2
        e_across, e_along = e_along, e_across
    yaw = math.remainder(yaw, math.pi)  # a box is the same turned by half a turn
    return AmodalBox(
        centre=np.array([x, (y_low + y_high) / 2, z]),
        size=np.array([e_across, height, e_along]),
        yaw=yaw,
    )
