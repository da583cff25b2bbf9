"""A third-party segmenter plugin for the tests: a module and an installed
distribution's metadata (.dist-info with entry points in seg2track_ros.segmenters),
written into a folder that goes on sys.path / PYTHONPATH, as pip would install it."""

from __future__ import annotations

import textwrap
from pathlib import Path

from seg2track_ros.engine.registry import ENTRY_POINT_GROUP

PLUGIN_MODULE = '''
import torch

from seg2track_ros.engine.detection_masks import DetectionMaskSegmenter


class LeftHalfSegmenter(DetectionMaskSegmenter):
    """A plugin's segmenter: each prompted object's mask is the left half of its box."""

    def prompt(self, object_ids, boxes, masks=None):
        out = super().prompt(object_ids, boxes, masks)
        for k, box in enumerate(boxes):
            middle = round((float(box[0]) + float(box[2])) / 2)
            out.masks[k, :, middle:] = False
            self._objects[int(object_ids[k])].mask = out.masks[k].clone()
        return out


def build(config):
    return LeftHalfSegmenter()


def build_wrong_type(config):
    return object()
'''


def make_plugin(root: Path, entries: dict[str, str]) -> Path:
    """An installed distribution 's2t_test_plugin' in `root` (a module plus its
    .dist-info with entry points in our group), as pip would leave it."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "s2t_test_plugin.py").write_text(textwrap.dedent(PLUGIN_MODULE))
    info = root / "s2t_test_plugin-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: s2t-test-plugin\nVersion: 0.1\n")
    lines = [f"[{ENTRY_POINT_GROUP}]"] + [f"{name} = {value}" for name, value in entries.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return root
