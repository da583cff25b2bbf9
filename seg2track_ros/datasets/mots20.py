"""MOTS20 (MOTSChallenge) ground truth, results and ``seqinfo.ini``.

``gt/gt.txt`` and results use the KITTI MOTS line format with frames from 1 and classes
2 pedestrian, 10 ignore region; readers and writers here shift frames to and from the
engine's 0-based index. Results hold pedestrians only: the writer skips other classes
and counts them (``WriteSummary.skipped_classes``).
"""

from __future__ import annotations

import configparser
import math
import re
from dataclasses import dataclass
from pathlib import Path

from seg2track_ros.datasets.errors import DatasetFileError, FormatError
from seg2track_ros.datasets.mots_format import (
    MOTS20,
    FramesLike,
    MotsWriter,
    WriteSummary,
    read_mots,
    write_mots,
)
from seg2track_ros.datasets.records import MaskObject

SEQUENCE_SECTION = "Sequence"


@dataclass(frozen=True)
class SeqInfo:
    """The ``[Sequence]`` section of a MOTChallenge ``seqinfo.ini``."""

    name: str
    im_dir: str
    frame_rate: float
    seq_length: int  # frames, numbered 1..seq_length in the files
    im_width: int
    im_height: int
    im_ext: str

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width), the order the mask lines use."""
        return self.im_height, self.im_width


def read_seqinfo(path: str | Path) -> SeqInfo:
    """Read ``seqinfo.ini``; raises FormatError naming the line of a bad or missing value."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DatasetFileError(f"cannot open {path}: {exc.strerror or exc}") from exc
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text, source=str(path))
    except configparser.MissingSectionHeaderError as exc:
        raise FormatError(path, exc.lineno, "expected a [Sequence] section header") from None
    except configparser.ParsingError as exc:
        line = exc.errors[0][0] if exc.errors else None
        raise FormatError(path, line, "not a key = value line") from None
    except (configparser.DuplicateOptionError, configparser.DuplicateSectionError) as exc:
        raise FormatError(path, exc.lineno, exc.message.split(": ", 1)[-1]) from None
    if not parser.has_section(SEQUENCE_SECTION):
        raise FormatError(path, None, f"no [{SEQUENCE_SECTION}] section")
    section = parser[SEQUENCE_SECTION]

    def value(key: str) -> tuple[str, int | None]:
        line = _key_line(text, key)
        if key.lower() not in section:
            header = _key_line(text, None)
            raise FormatError(path, header, f"[{SEQUENCE_SECTION}] has no {key}")
        return section[key.lower()].strip(), line

    def number(key: str, kind: type[int] | type[float]) -> int | float:
        raw, line = value(key)
        try:
            parsed = kind(raw)
        except ValueError:
            raise FormatError(
                path,
                line,
                f"{key} must be {'an integer' if kind is int else 'a number'}, found {raw!r}",
            ) from None
        if not math.isfinite(parsed) or parsed <= 0:
            raise FormatError(path, line, f"{key} must be positive, found {raw}")
        return parsed

    return SeqInfo(
        name=value("name")[0],
        im_dir=value("imDir")[0],
        frame_rate=float(number("frameRate", float)),
        seq_length=int(number("seqLength", int)),
        im_width=int(number("imWidth", int)),
        im_height=int(number("imHeight", int)),
        im_ext=value("imExt")[0],
    )


def _key_line(text: str, key: str | None) -> int | None:
    """1-based line of ``key`` in [Sequence] (of the section header when key is None);
    configparser keeps no line numbers, and an error without one is hard to act on."""
    in_section = False
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("["):
            in_section = stripped.lower() == f"[{SEQUENCE_SECTION.lower()}]"
            if in_section and key is None:
                return number
            continue
        if in_section and key is not None and re.match(rf"{re.escape(key)}\s*[=:]", stripped, re.I):
            return number
    return None


def read_mots20(path: str | Path, seqinfo: SeqInfo | None = None) -> dict[int, list[MaskObject]]:
    """Objects per 0-based frame (file frame - 1); raises FormatError.

    With ``seqinfo``, lines must also match its image size and lie within seqLength.
    """
    if seqinfo is None:
        return read_mots(path, MOTS20)
    return read_mots(path, MOTS20, image_size=seqinfo.image_size, frame_count=seqinfo.seq_length)


def write_mots20(
    path: str | Path, frames: FramesLike, *, keep_track_ids: bool = False
) -> WriteSummary:
    """Write tracks per 0-based frame as a MOTS20 results file (pedestrians, frames from 1).

    Same inputs and object-id policy as ``write_kitti_mots``.
    """
    return write_mots(path, frames, MOTS20, keep_track_ids=keep_track_ids)


def mots20_writer(path: str | Path, *, keep_track_ids: bool = False) -> MotsWriter:
    """A writer that takes one frame at a time (for a tracker running over a sequence)."""
    return MotsWriter(path, MOTS20, keep_track_ids=keep_track_ids)
