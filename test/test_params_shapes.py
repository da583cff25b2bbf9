"""Issue 12, defect 6: a params YAML is read the same way by every command, in either
shape (ROS's `node: ros__parameters:` or flat); a file whose values would not apply is
refused, never ignored."""

from __future__ import annotations

import pytest

from seg2track_ros.cli import main
from seg2track_ros.params import ParameterError, config_from_params_files, load_params_file

ROS_SHAPE = """\
/**:
  ros__parameters:
    model: tiny
    tracker.max_weak_frames: 7
    tracker:
      lost_logit: 1.5
"""
FLAT_DOTTED = "model: tiny\ntracker.max_weak_frames: 7\ntracker.lost_logit: 1.5\n"
FLAT_NESTED = "model: tiny\ntracker:\n  max_weak_frames: 7\n  lost_logit: 1.5\n"
NODE_SECTION = """\
tracker_node:
  ros__parameters:
    model: tiny
    tracker.max_weak_frames: 7
    tracker.lost_logit: 1.5
"""


@pytest.mark.parametrize("text", [FLAT_DOTTED, FLAT_NESTED, NODE_SECTION])
def test_both_shapes_give_the_same_values(tmp_path, text):
    reference, other = tmp_path / "ros.yaml", tmp_path / "other.yaml"
    reference.write_text(ROS_SHAPE)
    other.write_text(text)
    expected = {"model": "tiny", "tracker.max_weak_frames": 7, "tracker.lost_logit": 1.5}
    assert load_params_file(reference) == load_params_file(other) == expected
    config, _ = config_from_params_files([other])
    assert config.segmenter.model == "tiny"
    assert config.tracker.max_weak_frames == 7 and config.tracker.lost_logit == 1.5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "other_node:\n  ros__parameters:\n    model: tiny\n",
            "no section applies to tracker_node",
        ),
        ("ros__parameters:\n  model: tiny\n", "must sit under a node name"),
        ("/**:\n  ros__parameters:\n    model: tiny\nimage_size: 512\n", "mixes ROS sections"),
        ("- model\n", "expected a mapping"),
    ],
)
def test_files_whose_values_would_not_apply_are_refused(tmp_path, text, message):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(ParameterError, match=message):
        load_params_file(path)


def test_run_applies_a_flat_file(tmp_path, capsys):
    """`run` used to ignore a flat file silently: its (wrong) value now reaches the check."""
    path = tmp_path / "flat.yaml"
    path.write_text("image_size: 8192\n")
    detections = tmp_path / "d.txt"
    detections.write_text("0 1 1 5 5 0.9 1\n")
    args = ["run", "--detections", str(detections), "--det-format", "kitti"]
    assert main([*args, "--results", str(tmp_path / "r.txt"), "--params", str(path)]) == 1
    assert "image_size" in capsys.readouterr().err


def test_an_empty_set_value_is_the_empty_string():
    from seg2track_ros.params import parse_assignment

    assert parse_assignment("lift3d.object_sizes=") == ("lift3d.object_sizes", "")
    assert parse_assignment("class_map= ") == ("class_map", "")
    assert parse_assignment("image_size=256") == ("image_size", 256)
