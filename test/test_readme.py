"""The README documents every tracker_node parameter (a new one cannot go undocumented)."""

from __future__ import annotations

from rclpy.node import Node

from seg2track_ros.ros.parameters import RCLPY_PARAMETERS, declare_parameters

from conftest import REPO_ROOT


def test_every_parameter_is_in_the_readme(ros_context):
    readme = (REPO_ROOT / "README.md").read_text()
    node = Node("readme_check", context=ros_context)
    declare_parameters(node)
    missing = [
        name
        for name in node._parameters
        if name not in RCLPY_PARAMETERS and f"`{name}`" not in readme
    ]
    node.destroy_node()
    assert not missing, f"README lacks parameters {missing}"
