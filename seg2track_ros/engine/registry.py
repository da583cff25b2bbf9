"""Segmenters selected by name: the one loader that tracker_node, `seg2track run` and the
stress suite use.

A segmenter is registered as an entry point in the group ``seg2track_ros.segmenters``:
its name is what users write (``segmenter: detection-masks``), its value a factory
``factory(config: SegmenterConfig) -> Segmenter``. This package registers ``sam2`` and
``detection-masks`` in its setup.py; another package adds its own segmenter by
declaring an entry point in the same group, e.g. in its setup.py::

    entry_points={"seg2track_ros.segmenters": ["my-seg = my_pkg.seg:build"]}

and ``segmenter: my-seg`` then selects it in the node and ``--segmenter my-seg`` on the
command line, with no change to this package.

Fallback: where this package's own metadata is not installed (running from a source
tree on ``PYTHONPATH`` alone), its two built-in segmenters are still found by name
(``BUILTIN_SEGMENTERS``); an installed entry point of the same name wins.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module, metadata
from typing import TYPE_CHECKING

from seg2track_ros.engine.config import ConfigError, SegmenterConfig

if TYPE_CHECKING:  # torch is imported only when a segmenter is built
    from seg2track_ros.engine.segmenter import Segmenter

ENTRY_POINT_GROUP = "seg2track_ros.segmenters"
DEFAULT_SEGMENTER = "sam2"
# name -> "module:attribute", exactly as setup.py registers them (a test checks both agree).
BUILTIN_SEGMENTERS = {
    "sam2": "seg2track_ros.engine.sam2_model:build_segmenter",
    "detection-masks": "seg2track_ros.engine.detection_masks:build_segmenter",
}

SegmenterFactory = Callable[[SegmenterConfig], "Segmenter"]


class UnknownSegmenterError(ConfigError):
    """No segmenter of that name is installed; the message lists the installed ones."""


class SegmenterLoadError(ConfigError):
    """A registered segmenter could not be imported or built into a Segmenter."""


@dataclass(frozen=True)
class SegmenterEntry:
    name: str
    target: str  # "module:attribute"
    source: str  # the distribution that registers it, or "built-in" (the fallback)


def installed_segmenters() -> dict[str, SegmenterEntry]:
    """Every segmenter found by name: the entry-point group, plus the built-in ones
    that no installed entry point names (see the module docstring)."""
    found = {
        name: SegmenterEntry(name, target, "built-in")
        for name, target in BUILTIN_SEGMENTERS.items()
    }
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(entry_point, "dist", None)
        source = dist.name if dist is not None else "unknown distribution"
        found[entry_point.name] = SegmenterEntry(entry_point.name, entry_point.value, source)
    return dict(sorted(found.items()))


def check_segmenter_name(name: str) -> SegmenterEntry:
    """The entry for `name`; UnknownSegmenterError lists the installed names."""
    installed = installed_segmenters()
    entry = installed.get(name)
    if entry is None:
        raise UnknownSegmenterError(
            f"segmenter {name!r} is not installed; installed: {', '.join(installed)}"
            f" (a package adds one with an entry point in the group '{ENTRY_POINT_GROUP}')"
        )
    return entry


def load_segmenter(name: str, config: SegmenterConfig) -> Segmenter:
    """Build the segmenter registered as `name` from `config`.

    Raises UnknownSegmenterError for a name nothing registers, SegmenterLoadError when
    the registered factory cannot be imported or returns something that is not a
    Segmenter, and whatever the factory raises for its own settings (ConfigError,
    checkpoints.CheckpointError for SAM 2).
    """
    from seg2track_ros.engine.segmenter import Segmenter

    entry = check_segmenter_name(name)
    factory = _resolve(entry)
    segmenter = factory(config)
    if not isinstance(segmenter, Segmenter):
        raise SegmenterLoadError(
            f"segmenter {name!r} ({entry.target}, from {entry.source}) returned"
            f" {type(segmenter).__name__}, not a seg2track_ros.engine.segmenter.Segmenter"
        )
    return segmenter


def _resolve(entry: SegmenterEntry) -> SegmenterFactory:
    module_name, _, attribute = entry.target.partition(":")
    try:
        target = import_module(module_name.strip())
        for part in attribute.strip().split(".") if attribute.strip() else ():
            target = getattr(target, part)
    except (ImportError, AttributeError) as error:
        raise SegmenterLoadError(
            f"segmenter {entry.name!r} is registered as {entry.target} by {entry.source},"
            f" which cannot be loaded: {error}"
        ) from error
    if not callable(target):
        raise SegmenterLoadError(
            f"segmenter {entry.name!r}: {entry.target} from {entry.source} is not callable"
        )
    return target
