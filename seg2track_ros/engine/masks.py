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


def labels_to_counts(labels: np.ndarray, num_labels: int) -> list[np.ndarray]:
    """Uncompressed COCO RLE counts of the masks ``labels == 1 .. num_labels`` of a label
    image (H, W), all in one vectorised pass (the same counts as ``mask_to_counts`` of
    each mask).

    The column-major pixels are cut into runs of equal label once; the runs of each
    label, in order, give its foreground runs, and the gaps between them its background
    runs. Cost: one pass over the pixels plus a sort of the runs, whatever the number of
    labels. Labels outside 1..num_labels count as background.
    """
    if labels.ndim != 2:
        raise MaskEncodingError(f"expected a 2D label image, got shape {labels.shape}")
    total = labels.size
    if num_labels == 0:
        return []
    if total == 0:
        return [np.zeros(0, dtype=np.uint32) for _ in range(num_labels)]
    flat = np.ascontiguousarray(labels.T).ravel()
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [total]))
    values = flat[starts].astype(np.int64)
    keep = (values > 0) & (values <= num_labels)
    # A stable sort by label keeps each label's runs in pixel order.
    order = np.argsort(values[keep], kind="stable")
    starts, ends, values = starts[keep][order], ends[keep][order], values[keep][order] - 1
    runs = np.bincount(values, minlength=num_labels)[:num_labels]
    first_run = np.concatenate(([0], np.cumsum(runs)[:-1]))
    previous_end = np.concatenate(([0], ends[:-1]))
    previous_end[first_run[runs > 0]] = 0
    last_end = np.zeros(num_labels, dtype=np.int64)
    last_end[runs > 0] = ends[first_run[runs > 0] + runs[runs > 0] - 1]
    tail = total - last_end  # background after the last run; none when it is 0
    has_tail = tail > 0
    offsets = np.concatenate(([0], np.cumsum(2 * runs + has_tail)))
    counts = np.empty(offsets[-1], dtype=np.uint32)
    slot = offsets[values] + 2 * (np.arange(len(values)) - first_run[values])
    counts[slot] = starts - previous_end
    counts[slot + 1] = ends - starts
    counts[offsets[1:][has_tail] - 1] = tail[has_tail]
    return np.split(counts, offsets[1:-1])


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


def compressed_rle_runs(counts: str) -> np.ndarray:
    """Uncompressed run lengths (int64) of a compressed COCO RLE string.

    pycocotools, the project's codec, decodes these strings but never checks that the runs
    cover exactly height * width pixels: a short string decodes to a mask whose tail is
    uninitialised memory, a long one raises a message without the cause (seen with
    pycocotools 2.0.11). It also has no call that returns the runs, so the readers parse
    them here only to validate a line before pycocotools ever decodes it. The string
    form, as pycocotools' ``rleToString`` writes it: each run is a signed number in
    5-bit groups, low group first, each group as a character ``48 + bits`` with 0x20
    meaning "another group follows" and 0x10 in the last group the sign; runs from the
    fourth on are stored as the difference to the run two before.

    Raises ValueError (with the reason) for strings that are not of that form.
    """
    if not counts:
        raise ValueError("the RLE string is empty")
    try:
        raw = counts.encode("ascii")
    except UnicodeEncodeError:
        raise ValueError("the RLE string holds non-ASCII characters") from None
    codes = np.frombuffer(raw, dtype=np.uint8).astype(np.int64) - 48
    bad = np.flatnonzero((codes < 0) | (codes > 63))
    if bad.size:
        raise ValueError(f"the RLE string holds {counts[bad[0]]!r}, outside '0'..'o'")
    more = (codes & 0x20) != 0
    if more[-1]:
        raise ValueError("the RLE string ends inside a run length")
    ends = np.flatnonzero(~more)
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts + 1
    # 7 groups of 5 bits hold any 32-bit run, which is all pycocotools can store.
    if lengths.max() > 7:
        raise ValueError("the RLE string holds a run length longer than 32 bits")
    group = np.arange(codes.size) - np.repeat(starts, lengths)
    values = np.add.reduceat((codes & 0x1F) << (5 * group), starts)
    negative = (codes[ends] & 0x10) != 0
    values = np.where(negative, values - (np.int64(1) << (5 * lengths)), values)
    runs = values.copy()
    runs[1::2] = np.cumsum(values[1::2])
    runs[2::2] = np.cumsum(values[2::2])
    return runs
