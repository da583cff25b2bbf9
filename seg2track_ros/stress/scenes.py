"""Synthetic frames for the stress suite: coloured boxes moving over a gradient, each
object living a fixed number of frames and then replaced by a new one, so a long run
keeps starting and ending tracks (track births are what grow per-track state)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels


@dataclass(frozen=True)
class _Object:
    born: int  # first frame
    x0: float
    y0: float
    width: float
    height: float
    vx: float
    vy: float
    colour: tuple[int, int, int]


class Scene:
    """`objects` objects at any time, each alive for `lifetime` frames (staggered, so
    one is born every lifetime / objects frames). Deterministic for a seed."""

    def __init__(
        self,
        height: int = 120,
        width: int = 160,
        objects: int = 4,
        lifetime: int = 40,
        seed: int = 0,
    ) -> None:
        if objects < 1 or lifetime < 1:
            raise ValueError("objects and lifetime must be >= 1")
        self.height, self.width = int(height), int(width)
        self.objects, self.lifetime = int(objects), int(lifetime)
        self.seed = int(seed)
        self._current: dict[int, tuple[int, _Object]] = {}  # slot -> (generation, object)
        gradient = np.linspace(0, 120, self.width, dtype=np.uint8)[None, :]
        self._background = np.zeros((self.height, self.width, 3), np.uint8)
        self._background[..., 0] = gradient
        self._background[..., 2] = np.linspace(0, 90, self.height, dtype=np.uint8)[:, None]

    def _object(self, slot: int, generation: int) -> _Object:
        current = self._current.get(slot)
        if current is not None and current[0] == generation:
            return current[1]
        rng = np.random.default_rng((self.seed, slot, generation))
        width = float(rng.uniform(0.12, 0.3) * self.width)
        height = float(rng.uniform(0.15, 0.35) * self.height)
        obj = _Object(
            born=generation * self.lifetime - slot * self.lifetime // self.objects,
            x0=float(rng.uniform(0, self.width - width)),
            y0=float(rng.uniform(0, self.height - height)),
            width=width,
            height=height,
            vx=float(rng.uniform(-1.0, 1.0)),
            vy=float(rng.uniform(-0.5, 0.5)),
            colour=tuple(int(c) for c in rng.integers(60, 255, 3)),
        )
        self._current[slot] = (generation, obj)
        return obj

    def live(self, frame: int) -> list[_Object]:
        out = []
        for slot in range(self.objects):
            offset = slot * self.lifetime // self.objects
            generation = (frame + offset) // self.lifetime
            out.append(self._object(slot, generation))
        return out

    def boxes(self, frame: int) -> list[Box]:
        boxes = []
        for obj in self.live(frame):
            age = frame - obj.born
            x0 = float(np.clip(obj.x0 + obj.vx * age, 0, self.width - obj.width))
            y0 = float(np.clip(obj.y0 + obj.vy * age, 0, self.height - obj.height))
            boxes.append((round(x0), round(y0), round(x0 + obj.width), round(y0 + obj.height)))
        return [tuple(float(v) for v in b) for b in boxes]

    def image(self, frame: int) -> np.ndarray:
        """(H, W, 3) uint8 RGB with the frame's objects drawn as filled boxes."""
        image = self._background.copy()
        for obj, (x0, y0, x1, y1) in zip(self.live(frame), self.boxes(frame), strict=True):
            image[int(y0) : int(y1), int(x0) : int(x1)] = obj.colour
        return image


def stamp_of(frame: int, period_ns: int = 100_000_000, start_s: int = 1_000) -> int:
    """A frame's header stamp in nanoseconds (10 Hz from `start_s` by default)."""
    return start_s * 1_000_000_000 + frame * period_ns
