"""The installed configs and the launch file: true to the node's parameters, and what
the launch file passes to tracker_node (parsed: `launch` is not installable here)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from ament_index_python.packages import get_package_share_directory
from rclpy.node import Node
from rclpy.parameter import Parameter, parameter_dict_from_yaml_file

from seg2track_ros.ros.parameters import declare_parameters, defaults_yaml, read_parameters

from conftest import REPO_ROOT
from launch_stand_ins import launch_description, run_tracker_launch, walk
from node_harness import NodeUnderTest

SHARE = Path(get_package_share_directory("seg2track_ros"))
TRACKER_LAUNCH = SHARE / "launch" / "tracker.launch.py"
CONFIGS = sorted(p.name for p in (REPO_ROOT / "config").glob("*.yaml"))


def test_tracker_yaml_is_the_generated_defaults():
    assert (REPO_ROOT / "config" / "tracker.yaml").read_text() == defaults_yaml(), (
        "regenerate: python -m seg2track_ros.ros.parameters > config/tracker.yaml"
    )


@pytest.mark.parametrize("name", CONFIGS)
def test_every_config_is_valid_for_the_node(ros_context, name):
    values = parameter_dict_from_yaml_file(str(SHARE / "config" / name), use_wildcard=True)
    assert values, f"{name} sets nothing"
    node = Node(
        "config_check",
        context=ros_context,
        parameter_overrides=[Parameter.from_parameter_msg(msg) for msg in values.values()],
    )
    try:
        refused = declare_parameters(node)
        unknown = sorted(set(values) - set(node._parameters))
        assert not unknown, f"{name} sets unknown parameters {unknown}"
        config, settings = read_parameters(node, refused)
        if name == "kitti.yaml":
            assert settings.mode == "lockstep" and config.segmenter.model == "large"
            assert config.tracker.classes["pedestrian"].addition_threshold == 0.85
    finally:
        node.destroy_node()


def _launch_tree():
    source = (SHARE / "launch" / "tracker.launch.py").read_text()
    return ast.parse(source), compile(source, "tracker.launch.py", "exec")


def test_launch_file_declares_the_arguments():
    tree, _code = _launch_tree()
    declared = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "DeclareLaunchArgument":
            first = node.args[0]
            if isinstance(first, ast.Constant):
                declared.add(first.value)
            elif isinstance(first, ast.Name) and first.id == "name":
                declared |= {
                    k.value
                    for d in ast.walk(tree)
                    if isinstance(d, ast.Assign)
                    and getattr(d.targets[0], "id", "") == "PARAMETER_ARGUMENTS"
                    for k in d.value.keys
                }
    expected = {
        "params_file",
        "segmenter",
        "model",
        "checkpoint",
        "device",
        "image_topic",
        "detections_topic",
        "namespace",
        "mode",
        "publish_overlay",
        "log_level",
        "lift3d",
        "lift3d_source",
        "camera_info_topic",
        "depth_topic",
        "points_topic",
    }
    assert expected <= declared, expected - declared


def test_launch_file_starts_tracker_node_with_params_file_and_remaps():
    tree, _code = _launch_tree()
    (node_call,) = [
        n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "Node"
    ]
    keywords = {k.arg: k.value for k in node_call.keywords}
    assert ast.literal_eval(keywords["package"]) == "seg2track_ros"
    assert ast.literal_eval(keywords["executable"]) == "tracker_node"
    remaps = ast.unparse(keywords["remappings"])
    assert "('image', LaunchConfiguration('image_topic'))" in remaps
    assert "('detections', LaunchConfiguration('detections_topic'))" in remaps
    for topic in ("camera_info", "depth", "points"):
        assert f"('{topic}', LaunchConfiguration('{topic}_topic'))" in remaps
    assert ast.unparse(keywords["parameters"]) == "parameters"
    source = ast.unparse(tree)
    assert "parameters = [LaunchConfiguration('params_file').perform(context)]" in source
    assert "FindPackageShare('seg2track_ros'), 'config', 'tracker.yaml'" in source


def test_node_runs_with_the_installed_params_file(ros_context):
    params = SHARE / "config" / "tracker.yaml"
    node = NodeUnderTest(
        ros_context,
        {"model": "tiny", "checkpoint": "random", "device": "cpu", "image_size": 64},
        name="params_file_tracker",
        params_file=params,
    )
    try:
        node.wait_active()
        assert node.state() == "active"
    finally:
        node.close()


@pytest.mark.parametrize("name", CONFIGS)
def test_params_file_reader_builds_the_same_config_as_the_node(ros_context, name):
    from seg2track_ros.params import config_from_params_files

    path = SHARE / "config" / name
    values = parameter_dict_from_yaml_file(str(path), use_wildcard=True)
    node = Node(
        "config_compare",
        context=ros_context,
        parameter_overrides=[Parameter.from_parameter_msg(msg) for msg in values.values()],
    )
    try:
        expected = read_parameters(node, declare_parameters(node))
    finally:
        node.destroy_node()
    assert config_from_params_files([path]) == expected


def test_params_file_reader_refuses_unknown_names_and_wrong_types(tmp_path):
    from seg2track_ros.params import ParameterError, config_from_params_files

    path = tmp_path / "p.yaml"
    path.write_text("/**:\n  ros__parameters:\n    tracker.max_weak_frame: 3\n")
    with pytest.raises(ParameterError, match=r"tracker\.max_weak_frame"):
        config_from_params_files([path])
    with pytest.raises(ParameterError, match="image_size"):
        config_from_params_files([], {"image_size": 256.0})
    config, _ = config_from_params_files([], {"tracker.classes.car.addition_threshold": 0.5})
    assert config.tracker.classes["car"].addition_threshold == 0.5


def test_kitti_replay_launch_plays_the_bag_into_tracker_and_results_writer():
    source = (SHARE / "launch" / "kitti_replay.launch.py").read_text()
    tree = ast.parse(source)
    compile(source, "kitti_replay.launch.py", "exec")
    nodes = [
        {k.arg: ast.unparse(k.value) for k in n.keywords}
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "Node"
    ]
    assert {n["executable"] for n in nodes} == {"'tracker_node'", "'results_writer'"}
    assert "'kitti.yaml'" in ast.unparse(tree) and "'bag', 'play'" in ast.unparse(tree)
    # results_writer and tracker_node agree on the topic: node-relative `tracks`
    assert "tracks" in (REPO_ROOT / "seg2track_ros" / "ros" / "results_writer.py").read_text()


def test_kitti_replay_launch_ends_when_the_bag_ends(monkeypatch):
    """Issue 12: the launch ran on after the bag ended. Now results_writer's exit (the
    last frame written) shuts it down, and so does the end of `ros2 bag play` after the
    `drain` time."""
    description = launch_description(monkeypatch, SHARE / "launch" / "kitti_replay.launch.py")
    items = list(walk(description))
    handlers = [i.args[0] for i in items if type(i).__name__ == "RegisterEventHandler"]
    on_exit = {}
    for handler in handlers:
        assert type(handler).__name__ == "OnProcessExit"
        target = handler.kwargs["target_action"]
        shutdowns = [i for i in walk(handler.kwargs["on_exit"]) if type(i).__name__ == "Shutdown"]
        assert shutdowns, "an OnProcessExit handler that does not shut the launch down"
        if type(target).__name__ == "ExecuteProcess":
            on_exit["play"] = handler
            assert target.kwargs["cmd"][:3] == ["ros2", "bag", "play"]
        else:
            on_exit[target.kwargs["executable"]] = handler
    assert set(on_exit) == {"play", "results_writer"}
    # The bag's end waits `drain` seconds for the last outputs before shutting down.
    (timer,) = on_exit["play"].kwargs["on_exit"]
    assert type(timer).__name__ == "TimerAction"
    assert timer.kwargs["period"].args == ("drain",)
    declared = {i.args[0] for i in items if type(i).__name__ == "DeclareLaunchArgument"}
    assert {"bag", "results", "params_file", "rate", "drain"} <= declared


def test_shipped_configs_resolve_by_name_from_any_folder(tmp_path, monkeypatch, capsys):
    """Issue 12: `--params config/kitti.yaml` worked only from the repository root. It
    now resolves from the installed share folder when no such file is here."""
    from seg2track_ros.cli import main
    from seg2track_ros.params import ParameterError, resolve_params_file

    monkeypatch.chdir(tmp_path)
    shipped = SHARE / "config" / "kitti.yaml"
    assert resolve_params_file("config/kitti.yaml") == shipped
    assert resolve_params_file("kitti.yaml") == shipped
    # A file that exists as given wins over the shipped one.
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "kitti.yaml").write_text("/**:\n  ros__parameters:\n    model: tiny\n")
    assert resolve_params_file("config/kitti.yaml") == Path("config/kitti.yaml")
    with pytest.raises(ParameterError, match=r"not found \(shipped configs.*kitti\.yaml"):
        resolve_params_file("config/nothere.yaml")
    with pytest.raises(ParameterError, match="not found"):
        resolve_params_file("elsewhere/kitti.yaml")  # only config/<name> or <name>

    boxes = tmp_path / "boxes.txt"
    boxes.write_text("0 10 20 50 60 0.9 1\n")
    (tmp_path / "images").mkdir()
    import cv2
    import numpy as np

    cv2.imwrite(str(tmp_path / "images" / "0.png"), np.zeros((80, 100, 3), np.uint8))
    code = main(
        [
            "run",
            "--images",
            "images",
            "--detections",
            "boxes.txt",
            "--det-format",
            "boxes",
            "--segmenter",
            "detection-masks",
            "--params",
            "mot.yaml",
            "--results",
            "r.txt",
            "-q",
        ]
    )
    assert code == 0, capsys.readouterr().err
    import yaml

    record = yaml.safe_load((tmp_path / "r.run.yaml").read_text())
    assert record["inputs"]["params"] == str(SHARE / "config" / "mot.yaml")


def test_tracker_launch_remaps_the_compressed_topic_with_the_image_topic(monkeypatch):
    """image_transport:=compressed with image_topic:=/cam/image_raw must subscribe to
    /cam/image_raw/compressed (image_transport's naming), not to image/compressed."""
    import sys

    node, remaps = run_tracker_launch(
        monkeypatch,
        TRACKER_LAUNCH,
        params_file="p.yaml",
        image_topic="/cam/image_raw",
        image_transport="compressed",
        image_size="512",
    )
    assert remaps["image"] == "/cam/image_raw"
    assert remaps["image/compressed"] == "/cam/image_raw/compressed"
    # image_size reaches the node as an integer (a string would fail its type check).
    assert node.kwargs["parameters"] == [
        "p.yaml",
        {"image_size": 512, "image_transport": "compressed"},
    ]
    assert "launch" in sys.modules  # the stand-ins, removed again by monkeypatch


def test_tracker_launch_turns_on_3d_tracks_and_remaps_their_inputs(monkeypatch):
    """lift3d:=true lift3d_source:=points points_topic:=... reach the node as the
    parameters lift3d.enabled (a bool) and lift3d.source and as the remap of points."""
    node, remaps = run_tracker_launch(
        monkeypatch,
        TRACKER_LAUNCH,
        params_file="p.yaml",
        image_topic="/cam/image_raw",
        camera_info_topic="/cam/camera_info",
        depth_topic="depth",
        points_topic="/velodyne_points",
        lift3d="true",
        lift3d_source="points",
    )
    assert remaps["camera_info"] == "/cam/camera_info"
    assert remaps["points"] == "/velodyne_points"
    assert node.kwargs["parameters"] == [
        "p.yaml",
        {"lift3d.enabled": True, "lift3d.source": "points"},
    ]
