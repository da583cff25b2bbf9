"""Line reading and field parsing shared by the readers; every failure is a FormatError.

The readers hold no parsing code of their own beyond their field layout, so that every
format reports a bad value the same way: the file, the 1-based line number and what the
value should have been.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

from seg2track_ros.datasets.errors import DatasetFileError, FormatError
from seg2track_ros.engine.masks import compressed_rle_runs


def data_lines(path: Path, separator: str | None = None) -> Iterator[tuple[int, list[str]]]:
    """(1-based line number, fields) for every non-blank line of a text file.

    Blank lines carry no data (files often end with one), so they are passed over; every
    other line is returned, and the reader decides whether it is valid. ``separator``
    None splits on runs of whitespace; "," splits on commas and strips each field.
    """
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise DatasetFileError(f"cannot open {path}: {exc.strerror or exc}") from exc
    with handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("ascii")
            except UnicodeDecodeError as exc:
                # The formats are plain ASCII; anything else is a binary or mislabelled file.
                raise FormatError(
                    path, number, f"not ASCII text (byte {raw[exc.start]:#04x})"
                ) from None
            if not text.strip():
                continue
            if separator is None:
                fields = text.split()
            else:
                fields = [field.strip() for field in text.rstrip("\r\n").split(separator)]
            yield number, fields


def expect_fields(
    path: Path, line: int, fields: list[str], count: int, layout: str, *, at_least: bool = False
) -> None:
    """Raise FormatError unless a line has ``count`` fields (or more, with ``at_least``)."""
    if len(fields) == count or (at_least and len(fields) > count):
        return
    wanted = f"at least {count}" if at_least else str(count)
    raise FormatError(path, line, f"expected {wanted} fields ({layout}), found {len(fields)}")


def parse_int(path: Path, line: int, name: str, text: str, minimum: int | None = None) -> int:
    """An integer field; ``minimum`` (inclusive) when given."""
    try:
        value = int(text)
    except ValueError:
        raise FormatError(path, line, f"{name} must be an integer, found {text!r}") from None
    if minimum is not None and value < minimum:
        raise FormatError(path, line, f"{name} must be >= {minimum}, found {value}")
    return value


def parse_float(path: Path, line: int, name: str, text: str) -> float:
    """A finite real number field."""
    try:
        value = float(text)
    except ValueError:
        raise FormatError(path, line, f"{name} must be a number, found {text!r}") from None
    if not math.isfinite(value):
        raise FormatError(path, line, f"{name} must be finite, found {text!r}")
    return value


def parse_box_xyxy(path: Path, line: int, fields: list[str]) -> tuple[float, float, float, float]:
    """Four fields x0 y0 x1 y1 forming a box with positive width and height."""
    x0, y0, x1, y1 = (
        parse_float(path, line, name, text)
        for name, text in zip(("x0", "y0", "x1", "y1"), fields, strict=True)
    )
    if x1 <= x0 or y1 <= y0:
        raise FormatError(
            path, line, f"box ({x0}, {y0}, {x1}, {y1}) is empty: it needs x1 > x0 and y1 > y0"
        )
    return x0, y0, x1, y1


# The one parser of COCO RLE strings lives with the codec (engine/masks.py).
compressed_rle_counts = compressed_rle_runs


def parse_rle(path: Path, line: int, counts: str, height: int, width: int) -> str:
    """A compressed COCO RLE string checked to describe exactly a height x width mask."""
    try:
        runs = compressed_rle_counts(counts)
    except ValueError as exc:
        raise FormatError(path, line, f"invalid RLE: {exc}") from None
    if (runs < 0).any():
        raise FormatError(path, line, "invalid RLE: it decodes to a negative run length")
    total = int(runs.sum())
    if total != height * width:
        raise FormatError(
            path,
            line,
            f"RLE covers {total} pixels but the line says the mask is {height}x{width}"
            f" = {height * width} pixels (wrong size fields, or a truncated RLE?)",
        )
    return counts
