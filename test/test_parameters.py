"""tracker_node parameters: declared with defaults, descriptions and ranges; read into
the engine config; invalid values named."""

from __future__ import annotations

import dataclasses

import pytest
from rclpy.node import Node
from rclpy.parameter import Parameter

from seg2track_ros.engine.config import EngineConfig, TrackerConfig
from seg2track_ros.ros.parameters import (
    RCLPY_PARAMETERS,
    TRACKER_DESCRIPTIONS,
    ParameterError,
    declare_parameters,
    read_parameters,
)


def _node(context, **overrides) -> Node:
    return Node(
        "params_under_test",
        context=context,
        parameter_overrides=[
            Parameter(k.replace("__", "."), value=v) for k, v in overrides.items()
        ],
    )


def test_defaults_equal_the_engine_defaults_and_everything_is_described(ros_context):
    node = _node(ros_context)
    refused = declare_parameters(node)
    assert refused == {}
    config, settings = read_parameters(node)
    assert config == EngineConfig()
    assert settings.mode == "realtime" and settings.autostart is True
    for name, parameter in node._parameters.items():
        if name in RCLPY_PARAMETERS:
            continue
        descriptor = node.describe_parameter(name)
        assert descriptor.description, f"{name} has no description"
        if parameter.type_ == Parameter.Type.DOUBLE:
            assert descriptor.floating_point_range, f"{name} has no range"
        if parameter.type_ == Parameter.Type.INTEGER:
            assert descriptor.integer_range, f"{name} has no range"
    node.destroy_node()


def test_every_tracker_field_is_a_parameter():
    scalars = {
        f.name
        for f in dataclasses.fields(TrackerConfig)
        if f.name not in ("classes", "default_class")
    }
    assert scalars == set(TRACKER_DESCRIPTIONS)


def test_overrides_reach_the_engine_config_including_new_classes(ros_context):
    node = _node(
        ros_context,
        model="tiny",
        tracker__max_weak_frames=9,
        tracker__class_ids=["car", "cyclist"],
        tracker__classes__cyclist__addition_threshold=0.7,
        tracker__default_class__detection_threshold=0.3,
        mode="lockstep",
    )
    config, settings = read_parameters(node, declare_parameters(node))
    assert config.segmenter.model == "tiny"
    assert config.tracker.max_weak_frames == 9
    assert set(config.tracker.classes) == {"car", "cyclist"}
    assert config.tracker.classes["cyclist"].addition_threshold == 0.7
    assert config.tracker.classes["car"].addition_threshold == 0.6  # KITTI default kept
    assert config.tracker.default_class.detection_threshold == 0.3
    assert settings.mode == "lockstep"
    node.destroy_node()


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"tracker__removal_quality": 1.5}, "tracker.removal_quality"),
        ({"image_size": 100}, "image_size"),
        ({"tracker__max_weak_frames": "five"}, "tracker.max_weak_frames"),
        ({"model": "huge"}, "model"),
        ({"mode": "fast"}, "mode"),
        ({"device": "gpu"}, "device"),
        ({"tracker__min_existence": 0.9}, "min_existence"),
    ],
)
def test_invalid_values_fail_naming_the_parameter(ros_context, overrides, named):
    node = _node(ros_context, **overrides)
    refused = declare_parameters(node)  # never raises: the process must survive
    with pytest.raises(ParameterError, match=named.replace(".", r"\.")):
        read_parameters(node, refused)
    node.destroy_node()
