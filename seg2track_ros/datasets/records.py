"""The records the readers return and the writers take: one object or detection each.

Frames are 0-based everywhere in these records (the engine's frame index); the readers
and writers of 1-based formats (MOTS20, MOT) shift by one at the file boundary. Masks stay
compressed COCO RLE strings until ``mask()`` is called, so a whole sequence fits in memory
(KITTI MOTS 0002: 1316 objects, 0.3 MB as RLE strings, 600 MB as decoded masks).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from pycocotools import mask as mask_utils

# KITTI MOTS and MOTS20 class numbers and the engine's class names. Ignore regions
# (class 10, object id 10000) mark pixels that evaluation neither rewards nor penalises.
CAR = 1
PEDESTRIAN = 2
IGNORE_CLASS = 10
IGNORE_OBJECT_ID = 10000
CLASS_NAMES: dict[int, str] = {CAR: "car", PEDESTRIAN: "pedestrian"}
CLASS_NUMBERS: dict[str, int] = {name: number for number, name in CLASS_NAMES.items()}


def class_name(class_number: int) -> str:
    """The engine's class id for a file's class number: "car", "pedestrian" or the number."""
    return CLASS_NAMES.get(class_number, str(class_number))


def coco_rle(counts: str, height: int, width: int) -> dict:
    """The dict pycocotools takes for a compressed RLE string."""
    return {"size": [height, width], "counts": counts.encode("ascii")}


def encode_mask(mask: np.ndarray) -> str:
    """Compressed COCO RLE string of a binary (H, W) mask, encoded by pycocotools."""
    fortran = np.asfortranarray(mask, dtype=np.uint8)
    return mask_utils.encode(fortran)["counts"].decode("ascii")


def decode_masks(records: Sequence[MaskObject | MaskDetection]) -> np.ndarray:
    """Masks (N, H, W) bool of records that share one image size, decoded in one call.

    An empty sequence gives (0, 0, 0); callers that know the image size build their own.
    """
    if not records:
        return np.zeros((0, 0, 0), dtype=bool)
    stacked = mask_utils.decode([record.rle for record in records])  # (H, W, N), Fortran
    return np.ascontiguousarray(stacked.transpose(2, 0, 1), dtype=bool)


@dataclass(frozen=True)
class MaskObject:
    """One line of a KITTI MOTS or MOTS20 file: an object's mask on one frame.

    ``object_id`` is ``class_id * 1000 + instance``, except ignore regions (class 10),
    whose object id is 10000. ``counts`` is the compressed COCO RLE string, already
    checked by the reader to cover ``height * width`` pixels.
    """

    frame: int  # 0-based
    object_id: int
    class_id: int
    height: int
    width: int
    counts: str

    @property
    def instance(self) -> int:
        return self.object_id % 1000

    @property
    def is_ignore(self) -> bool:
        return self.class_id == IGNORE_CLASS

    @property
    def class_name(self) -> str:
        return class_name(self.class_id)

    @property
    def rle(self) -> dict:
        return coco_rle(self.counts, self.height, self.width)

    def mask(self) -> np.ndarray:
        """The decoded mask (H, W) bool; decoded again on every call."""
        return np.ascontiguousarray(mask_utils.decode(self.rle), dtype=bool)

    def box(self) -> tuple[float, float, float, float] | None:
        """Tight xyxy box in pixel edges, without decoding; None for an empty mask."""
        if mask_utils.area(self.rle) == 0:
            return None
        x, y, w, h = (float(v) for v in mask_utils.toBbox(self.rle))
        return x, y, x + w, y + h


@dataclass(frozen=True)
class MaskDetection:
    """One TrackR-CNN detection: box xyxy, score, class number, mask as RLE, embedding.

    ``embedding`` (D,) float32 holds the association features TrackR-CNN appends to
    each line (empty when the file has none); it takes no part in equality.
    """

    frame: int  # 0-based
    box: tuple[float, float, float, float]
    score: float
    class_id: int
    height: int
    width: int
    counts: str
    embedding: np.ndarray = field(
        default_factory=lambda: np.zeros(0, dtype=np.float32), compare=False
    )

    @property
    def class_name(self) -> str:
        return class_name(self.class_id)

    @property
    def rle(self) -> dict:
        return coco_rle(self.counts, self.height, self.width)

    def mask(self) -> np.ndarray:
        """The decoded mask (H, W) bool; decoded again on every call."""
        return np.ascontiguousarray(mask_utils.decode(self.rle), dtype=bool)


@dataclass(frozen=True)
class BoxDetection:
    """One box detection (KITTI-style boxes or MOT det.txt), class as the engine names it."""

    frame: int  # 0-based
    box: tuple[float, float, float, float]  # xyxy in pixels
    score: float
    class_name: str


def masks_by_id(objects: Iterable[MaskObject]) -> dict[int, np.ndarray]:
    """Decoded masks of one frame's objects keyed by object id (for comparisons in tests
    and evaluation scripts; a whole sequence at once would not fit in memory)."""
    return {obj.object_id: obj.mask() for obj in objects}
