"""A procedural KITTI-like sequence with exact ground truth, for the demo and tests.

Drawn by this project (no KITTI images can be shipped or downloaded): a road scene
with cars (rounded boxes with windows and wheels) and pedestrians (body and head)
moving across at different depths. Nearer objects are drawn later and hide farther
ones, so the ground truth has partial and full occlusions; masks are the visible parts
and never overlap, as in KITTI MOTS. Seeded: the same arguments give the same pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seg2track_ros.datasets.kitti_mots import write_kitti_mots

CAR, PEDESTRIAN = "car", "pedestrian"


@dataclass(frozen=True)
class _Actor:
    track_id: int
    kind: str
    x0: float  # left edge at frame 0, in units of image width
    speed: float  # image widths per frame
    y_bottom: float  # ground contact, in units of image height (larger = nearer)
    scale: float  # size factor
    colour: tuple[int, int, int]
    first: int  # first frame it exists
    last: int  # last frame it exists


@dataclass(frozen=True)
class SyntheticSequence:
    images: Path  # folder of NNNNNN.png
    ground_truth: Path  # KITTI MOTS instances_txt file
    frames: int
    size: tuple[int, int]  # (height, width)


def _actors(rng: np.random.Generator, frames: int) -> list[_Actor]:
    specs = [
        (CAR, 0.05, 0.006, 0.80, 1.00, 0, frames),
        (CAR, 0.70, -0.005, 0.70, 0.80, 0, frames),
        (CAR, -0.20, 0.009, 0.88, 1.15, frames // 5, frames),
        (PEDESTRIAN, 0.30, 0.002, 0.78, 1.00, 0, frames),
        (PEDESTRIAN, 0.55, -0.0025, 0.74, 0.90, 0, frames),
        (PEDESTRIAN, 0.90, -0.003, 0.84, 1.10, frames // 3, frames),
    ]
    actors = []
    for index, (kind, x0, speed, y_bottom, scale, first, last) in enumerate(specs, start=1):
        colour = tuple(int(c) for c in rng.integers(40, 230, 3))
        actors.append(_Actor(index, kind, x0, speed, y_bottom, scale, colour, first, last))
    return actors


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    image = np.zeros((height, width, 3), np.float32)
    sky = int(height * 0.45)
    image[:sky] = np.linspace(200, 150, sky)[:, None, None] * np.array([0.8, 0.9, 1.0])
    image[sky:] = np.linspace(90, 130, height - sky)[:, None, None]
    image[int(height * 0.85) : int(height * 0.87)] = 220  # lane marking
    image += rng.normal(0, 6, image.shape)
    return image


def _shape(actor: _Actor, frame: int, height: int, width: int) -> tuple[np.ndarray, list]:
    """The actor's silhouette mask and (mask, colour) paint layers on this frame."""
    scale = actor.scale * (0.6 + 0.5 * actor.y_bottom) * height / 375
    bottom = actor.y_bottom * height
    left = (actor.x0 + actor.speed * frame) * width
    yy, xx = np.mgrid[:height, :width]
    if actor.kind == CAR:
        w, h = 150 * scale, 70 * scale
        body = (xx >= left) & (xx < left + w) & (yy >= bottom - h) & (yy < bottom - 0.15 * h)
        cabin = (
            (xx >= left + 0.2 * w)
            & (xx < left + 0.75 * w)
            & (yy >= bottom - 1.45 * h)
            & (yy < bottom - h)
        )
        wheels = np.zeros_like(body)
        for cx in (left + 0.2 * w, left + 0.8 * w):
            wheels |= (xx - cx) ** 2 + (yy - (bottom - 0.15 * h)) ** 2 < (0.13 * w) ** 2
        window = (
            (xx >= left + 0.27 * w)
            & (xx < left + 0.68 * w)
            & (yy >= bottom - 1.35 * h)
            & (yy < bottom - 1.05 * h)
        )
        silhouette = body | cabin | wheels
        layers = [(body | cabin, actor.colour), (window, (60, 80, 110)), (wheels, (20, 20, 20))]
    else:
        w, h = 28 * scale, 95 * scale
        cx = left + w / 2
        torso = ((xx - cx) / (w / 2)) ** 2 + ((yy - (bottom - 0.55 * h)) / (0.45 * h)) ** 2 < 1
        head = (xx - cx) ** 2 + (yy - (bottom - 1.08 * h)) ** 2 < (0.13 * h) ** 2
        silhouette = torso | head
        layers = [(torso, actor.colour), (head, (225, 190, 160))]
    return silhouette, layers


def render_frame(
    actors: list[_Actor], frame: int, height: int, width: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[tuple[int, str, np.ndarray]]]:
    """RGB image and [(track_id, class, visible mask)] for one frame."""
    image = _background(rng, height, width)
    occupied = np.zeros((height, width), bool)
    visible = []
    # Far to near: the nearer (larger y_bottom) actor paints over and hides the farther.
    for actor in sorted(actors, key=lambda a: a.y_bottom):
        if not actor.first <= frame < actor.last:
            continue
        silhouette, layers = _shape(actor, frame, height, width)
        for mask, colour in layers:
            image[mask] = colour
        visible.append((actor, silhouette))
        occupied |= silhouette
    masks = []
    hidden = np.zeros((height, width), bool)
    for actor, silhouette in reversed(visible):  # near to far: subtract what is in front
        mask = silhouette & ~hidden
        hidden |= silhouette
        if mask.sum() >= 20:  # KITTI annotates objects with a visible part
            masks.append((actor.track_id, actor.kind, mask))
    image += rng.normal(0, 3, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), sorted(masks, key=lambda m: m[0])


def make_sequence(
    out_dir: Path, frames: int = 60, size: tuple[int, int] = (375, 1242), seed: int = 0
) -> SyntheticSequence:
    """Write `out_dir/images/NNNNNN.png` and `out_dir/gt/0000.txt` (KITTI MOTS)."""
    import cv2

    out_dir = Path(out_dir)
    images = out_dir / "images"
    images.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    height, width = size
    actors = _actors(rng, frames)
    truth = {}
    for frame in range(frames):
        rgb, masks = render_frame(actors, frame, height, width, rng)
        if not cv2.imwrite(str(images / f"{frame:06d}.png"), rgb[..., ::-1]):
            raise OSError(f"cannot write {images / f'{frame:06d}.png'}")
        truth[frame] = masks
    gt = out_dir / "gt" / "0000.txt"
    gt.parent.mkdir(parents=True, exist_ok=True)
    write_kitti_mots(gt, truth, keep_track_ids=True)
    return SyntheticSequence(images, gt, frames, size)
