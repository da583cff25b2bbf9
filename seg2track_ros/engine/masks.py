"""Instance-mask encodings: uncompressed COCO RLE counts and boxes.

pycocotools is the one RLE codec of the project. It decodes uncompressed counts
(``frPyObjects``) and converts to and from the compressed string form, but it has
no call that returns uncompressed counts for a mask, so ``mask_to_counts`` computes
the runs with numpy; the tests check it against pycocotools on real KITTI masks.
"""

from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils


class MaskEncodingError(ValueError):
    """Counts that do not describe a mask of the given size."""


def mask_to_counts(mask: np.ndarray) -> np.ndarray:
    """Uncompressed COCO RLE counts of a binary mask (H, W).

    Column-major runs, starting with a background run (0 when the first pixel is
    foreground). An empty mask gives ``[H * W]``. Returns uint32 counts.
    """
    if mask.ndim != 2:
        raise MaskEncodingError(f"expected a 2D mask, got shape {mask.shape}")
    flat = np.asarray(mask, dtype=bool).ravel(order="F")
    if flat.size == 0:
        return np.zeros(0, dtype=np.uint32)
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    edges = np.concatenate(([0], change, [flat.size]))
    runs = np.diff(edges)
    if flat[0]:
        runs = np.concatenate(([0], runs))
    return runs.astype(np.uint32)


def validate_counts(counts: np.ndarray, height: int, width: int) -> None:
    """Raise MaskEncodingError unless counts describe exactly height * width pixels."""
    total = int(np.sum(counts, dtype=np.uint64))
    if total != height * width:
        raise MaskEncodingError(
            f"RLE counts sum to {total} pixels, but the mask is {height}x{width}"
            f" = {height * width} pixels"
        )


def counts_to_coco(counts: np.ndarray, height: int, width: int) -> dict:
    """Compressed COCO RLE (``{"size": [h, w], "counts": bytes}``) from uncompressed counts."""
    validate_counts(counts, height, width)
    uncompressed = {"size": [int(height), int(width)], "counts": [int(c) for c in counts]}
    return mask_utils.frPyObjects(uncompressed, int(height), int(width))


def counts_to_mask(counts: np.ndarray, height: int, width: int) -> np.ndarray:
    """Binary mask (H, W) uint8 from uncompressed counts, decoded by pycocotools."""
    if height * width == 0:
        return np.zeros((height, width), dtype=np.uint8)
    return mask_utils.decode(counts_to_coco(counts, height, width))


def coco_to_mask(rle: dict) -> np.ndarray:
    """Binary mask (H, W) uint8 from a compressed COCO RLE dict."""
    return mask_utils.decode(rle)


def mask_to_box(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    """Tight box (x0, y0, x1, y1) of a mask in pixel edges, or None when it is empty.

    x1 and y1 are exclusive: a single pixel at (x, y) gives (x, y, x + 1, y + 1).
    """
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)
