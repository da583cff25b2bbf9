"""The README documents every tracker_node parameter (a new one cannot go undocumented)."""

from __future__ import annotations

import pytest
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


def _section(text: str, start: str, end: str = "\n## ") -> str:
    begin = text.index(start)
    stop = text.find(end, begin + len(start))
    return text[begin : stop if stop >= 0 else len(text)]


def test_cpu_speed_claim_quotes_benchmarks_md():
    """Issue 12: the README said SAM 2 on the CPU takes 'seconds per frame' (tiny at 1024
    took 15-88 s). Its CPU figures must be the ones BENCHMARKS.md records, with their
    command."""
    import re

    readme = (REPO_ROOT / "README.md").read_text()
    benchmarks = (REPO_ROOT / "BENCHMARKS.md").read_text()
    assert "takes seconds per frame" not in " ".join(readme.split())
    paragraph = " ".join(_section(readme, "**On the CPU**", "\n\n**").split())
    command = re.search(r"`(seg2track bench [^`]*)`", paragraph).group(1)
    table = _section(benchmarks, "## cpu-full-tiny-256", "<!-- /bench")
    assert command.split("--skip")[0] in table
    medians = {}
    for row in re.finditer(r"^\| (\d+) \| ([\d.]+) \|", table, re.MULTILINE):
        medians[int(row.group(1))] = float(row.group(2)) / 1000
    quoted = re.findall(r"([\d.]+) s(?: per frame)? with (\d+)", paragraph)
    assert len(quoted) >= 4, paragraph
    for seconds, objects in quoted:
        assert float(seconds) == pytest.approx(medians[int(objects)], abs=0.051), objects
    assert "--set image_size=" in paragraph and "--set model=tiny" in paragraph
