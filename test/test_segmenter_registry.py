"""Segmenters selected by name (engine/registry.py): the entry points this package
installs, the built-in fallback, a third-party plugin found through its own installed
metadata, and the errors for names nothing registers. The node and the command line
use the same loader (tests in test_tracker_node_segmenters.py and below)."""

from __future__ import annotations

import sys
from importlib import metadata

import pytest

from seg2track_ros.engine import registry
from seg2track_ros.engine.config import SegmenterConfig
from seg2track_ros.engine.detection_masks import DetectionMaskSegmenter
from seg2track_ros.engine.registry import (
    BUILTIN_SEGMENTERS,
    ENTRY_POINT_GROUP,
    SegmenterLoadError,
    UnknownSegmenterError,
    installed_segmenters,
    load_segmenter,
)
from seg2track_ros.params import ParameterError, config_from_params_files

from conftest import REPO_ROOT
from segmenter_plugin import make_plugin


def test_this_packages_entry_points_are_installed_and_load():
    """The metadata of the installed package (colcon's install of setup.py) names both
    built-in segmenters, with the same targets as the fallback table."""
    entry_points = {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    assert {name: entry_points[name].value for name in BUILTIN_SEGMENTERS} == BUILTIN_SEGMENTERS
    for name, entry in installed_segmenters().items():
        if name in BUILTIN_SEGMENTERS:
            assert entry.source == "seg2track_ros", entry  # found in metadata, not the fallback
    from seg2track_ros.engine import detection_masks, sam2_model

    assert entry_points["detection-masks"].load() is detection_masks.build_segmenter
    assert entry_points["sam2"].load() is sam2_model.build_segmenter


def test_setup_py_registers_exactly_the_builtin_table():
    text = (REPO_ROOT / "setup.py").read_text()
    for name, target in BUILTIN_SEGMENTERS.items():
        assert f'"{name} = {target}"' in text


def test_builtins_are_found_without_any_installed_metadata(monkeypatch):
    monkeypatch.setattr(registry.metadata, "entry_points", lambda group: [])
    found = installed_segmenters()
    assert {n: e.source for n, e in found.items()} == {
        "detection-masks": "built-in",
        "sam2": "built-in",
    }
    assert isinstance(load_segmenter("detection-masks", SegmenterConfig()), DetectionMaskSegmenter)


def test_sam2_by_name_builds_the_streaming_segmenter():
    from seg2track_ros.engine.sam2_stream import Sam2StreamSegmenter

    config = SegmenterConfig(model="tiny", checkpoint="random", device="cpu", image_size=64)
    assert isinstance(load_segmenter("sam2", config), Sam2StreamSegmenter)


def test_unknown_name_lists_the_installed_ones():
    with pytest.raises(UnknownSegmenterError) as error:
        load_segmenter("yolo-masks", SegmenterConfig())
    message = str(error.value)
    assert "'yolo-masks' is not installed" in message
    assert "installed: detection-masks, sam2" in message
    assert ENTRY_POINT_GROUP in message


def test_unknown_name_fails_the_parameters_naming_the_parameter():
    with pytest.raises(ParameterError, match=r"parameter 'segmenter'.*'yolo-masks'.*sam2"):
        config_from_params_files(overrides={"segmenter": "yolo-masks"})
    _config, settings = config_from_params_files(overrides={"segmenter": "detection-masks"})
    assert settings.segmenter == "detection-masks"


def test_a_plugin_is_found_through_its_own_installed_metadata(tmp_path, monkeypatch):
    root = make_plugin(
        tmp_path / "site",
        {
            "left-half": "s2t_test_plugin:build",
            "wrong-type": "s2t_test_plugin:build_wrong_type",
            "missing": "s2t_test_plugin_not_there:build",
        },
    )
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delitem(sys.modules, "s2t_test_plugin", raising=False)
    found = installed_segmenters()
    assert found["left-half"].source == "s2t-test-plugin"
    assert {"sam2", "detection-masks"} <= set(found)
    segmenter = load_segmenter("left-half", SegmenterConfig())
    assert type(segmenter).__name__ == "LeftHalfSegmenter"
    with pytest.raises(SegmenterLoadError, match="returned object, not a"):
        load_segmenter("wrong-type", SegmenterConfig())
    with pytest.raises(SegmenterLoadError, match=r"s2t_test_plugin_not_there.*cannot be loaded"):
        load_segmenter("missing", SegmenterConfig())


def test_the_command_line_selects_a_segmenter_by_name(tmp_path, capsys):
    import numpy as np
    from pycocotools import mask as mask_utils

    from seg2track_ros.cli import main

    detections = tmp_path / "dets.txt"
    # TrackR-CNN format: frame, x0, y0, x1, y1, score, class (1 car), h, w, RLE
    mask = np.zeros((40, 60), np.uint8, order="F")
    mask[5:20, 10:30] = 1
    rle = mask_utils.encode(mask)["counts"].decode()
    lines = [f"{f} 10 5 30 20 0.9 1 40 60 {rle}" for f in range(4)]
    detections.write_text("\n".join(lines) + "\n")
    results = tmp_path / "out.txt"
    common = ["run", "--detections", str(detections), "--results", str(results), "-q"]
    assert main([*common, "--segmenter", "no-such"]) == 1
    assert "segmenter 'no-such' is not installed; installed: detection-masks, sam2" in (
        capsys.readouterr().err
    )
    # From --set (as from a params file) when --segmenter is not given.
    assert main([*common, "--set", "segmenter=detection-masks"]) == 0
    assert results.read_text().strip()
