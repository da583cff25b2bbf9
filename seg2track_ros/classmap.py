"""Detector classes -> benchmark classes, where results files are written.

A detector names its classes its own way: a COCO detector says ``person`` (or ``0``),
KITTI MOTS and MOTS20 say ``pedestrian``. Tracks keep the detector's class (the node
publishes it unchanged); the results writer maps it to the benchmark's class through a
``ClassMap``. A track whose class has no entry, or maps to a class the benchmark lacks,
is left out of the results file, warned about once per class and counted per class
(``WriteSummary.unmapped_tracks``), never dropped silently.

The default map, ``coco``: ``person``/``0`` -> pedestrian and ``car``/``2`` -> car (COCO
names and 0-based ids, as YOLO-style detectors publish them). KITTI MOTS annotates only
cars and pedestrians; its cars do not include vans, trucks, buses or trams, so mapping
``truck`` or ``bus`` to car would score those vehicles as false positives, and riders
(``bicycle``, ``motorcycle``) are not pedestrians. They stay unmapped; add them
explicitly (``--class-map coco,truck=car``) if your ground truth counts them. The
benchmark's own names (``car``, ``pedestrian``) always map to themselves, so tracks from
the dataset readers (which turn KITTI class numbers 1 and 2 into these names) need no map.

On input (tracker_node's and `seg2track run`'s ``class_map`` parameter, empty by
default): detections are renamed before tracking, so that a COCO detector's ``person``
gets the thresholds under ``tracker.classes.pedestrian`` and its tracks carry
``pedestrian``. There a class without an entry keeps its own name (and the default
thresholds), reported once: a robot may want its trucks tracked.

Spec syntax (the CLI's ``--class-map`` and results_writer's ``class_map`` parameter):
comma-separated items, each ``coco`` (the defaults), ``none`` (nothing but the benchmark's
own names) or ``detector_class=benchmark_class``; later items win. Or the path of a YAML
file mapping detector classes to benchmark classes (``person: pedestrian``, ``0:
pedestrian``), which replaces the defaults.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from pathlib import Path

from seg2track_ros.engine.types import Detections
from seg2track_ros.errors import UserFacingError

_LOG = logging.getLogger(__name__)

BENCHMARK_CLASSES = ("car", "pedestrian")
COCO = {"person": "pedestrian", "0": "pedestrian", "car": "car", "2": "car"}
DEFAULT_SPEC = "coco"
PRESETS = {"coco": COCO, "none": {}}


class ClassMapError(UserFacingError, ValueError):
    """A class map that cannot be read; the message says which entry and why."""


class ClassMap:
    """``benchmark_class(detector_class)``: the benchmark class, or None when unmapped."""

    def __init__(self, entries: Mapping[str, str] | None = None) -> None:
        table = {name: name for name in BENCHMARK_CLASSES}
        for source, target in (COCO if entries is None else entries).items():
            source, target = str(source).strip(), str(target).strip()
            if not source or target not in BENCHMARK_CLASSES:
                raise ClassMapError(
                    f"class map entry {source!r} -> {target!r}: the benchmark class must be"
                    f" one of {', '.join(BENCHMARK_CLASSES)}"
                )
            table[source] = target
        self.entries: dict[str, str] = table

    def benchmark_class(self, detector_class: str) -> str | None:
        return self.entries.get(str(detector_class))

    def describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.entries.items() if k != v) or "none"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ClassMap) and other.entries == self.entries

    def __repr__(self) -> str:
        return f"ClassMap({self.describe()})"


def parse_class_map(spec: str | Path | None) -> ClassMap:
    """A ClassMap from a spec (see the module docstring); None or "" give the default."""
    if spec is None or not str(spec).strip():
        spec = DEFAULT_SPEC
    text = str(spec).strip()
    path = Path(text)
    if "=" not in text and text not in PRESETS and "," not in text:
        if not path.is_file():
            raise ClassMapError(
                f"class map {text!r} is neither a file, a preset ({', '.join(PRESETS)}) nor"
                " detector_class=benchmark_class items"
            )
        return ClassMap(_read_file(path))
    entries: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if item in PRESETS:
            entries.update(PRESETS[item])
            continue
        source, sep, target = item.partition("=")
        if not sep or not source.strip():
            raise ClassMapError(
                f"class map item {item!r}: expected detector_class=benchmark_class,"
                f" or one of {', '.join(PRESETS)}"
            )
        entries[source.strip()] = target.strip()
    return ClassMap(entries)


def _read_file(path: Path) -> dict[str, str]:
    import yaml

    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ClassMapError(f"cannot read the class map {path}: {error}") from None
    if not isinstance(document, Mapping) or any(
        isinstance(v, Mapping | list) for v in document.values()
    ):
        raise ClassMapError(
            f"{path}: a class map file maps detector classes to benchmark classes, one"
            " per line (person: pedestrian)"
        )
    return {str(k): str(v) for k, v in document.items()}


class UnmappedTracks:
    """Counts the distinct tracks of each class a ClassMap (or the benchmark) lacks and
    warns once per class."""

    def __init__(self, warn: Callable[[str], None] | None = None) -> None:
        self._warn = warn or _LOG.warning
        self._tracks: dict[str, set[int]] = {}

    def add(self, detector_class: str, track_id: int, why: str) -> None:
        seen = self._tracks.setdefault(detector_class, set())
        if not seen:
            self._warn(
                f"class {detector_class!r} {why}: its tracks are left out of the results"
                " (to keep them, map it with --class-map or the class_map parameter:"
                f" coco,{detector_class}=car or ...=pedestrian)"
            )
        seen.add(track_id)

    def counts(self) -> dict[str, int]:
        return {name: len(ids) for name, ids in sorted(self._tracks.items())}


def describe_unmapped(counts: Mapping[str, int]) -> str:
    """'3 tracks of unmapped classes left out (truck 2, bicycle 1)' or ''."""
    if not counts:
        return ""
    total = sum(counts.values())
    parts = ", ".join(f"{name} {count}" for name, count in counts.items())
    noun = "track" if total == 1 else "tracks"
    return f"{total} {noun} of unmapped classes left out ({parts})"


class DetectionClassMapper:
    """Renames a frame's detection classes through a ClassMap before tracking; a class
    without an entry keeps its name and is reported once (`report(message)`)."""

    def __init__(self, class_map: ClassMap, report: Callable[[str], None] | None = None) -> None:
        self.class_map = class_map
        self._report = report or _LOG.warning
        self._reported: set[str] = set()

    def __call__(self, detections: Detections) -> Detections:
        if not detections.class_ids:
            return detections
        names = []
        for name in detections.class_ids:
            mapped = self.class_map.benchmark_class(name)
            if mapped is None:
                if name not in self._reported:
                    self._reported.add(name)
                    self._report(
                        f"detection class {name!r} has no class_map entry: tracked as"
                        f" {name!r} with tracker.default_class thresholds"
                    )
                mapped = name
            names.append(mapped)
        return dataclasses.replace(detections, class_ids=tuple(names))
