"""The README is true: every tracker_node parameter is documented, its CPU speed figures
are BENCHMARKS.md's, and the commands of its "First hour" run (issue 12)."""

from __future__ import annotations

import re
from pathlib import Path

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


def _commands(section: str) -> list[str]:
    """The shell commands of a README section's code blocks, continuation lines joined
    and comments dropped."""
    commands = []
    for block in section.split("```bash\n")[1:]:
        text = block.split("```")[0].replace("\\\n", " ")
        for line in text.splitlines():
            line = line.split("  #")[0].strip()
            if line and not line.startswith("#"):
                commands.append(" ".join(line.split()))
    return commands


def test_first_hour_commands_are_true(tmp_path, monkeypatch):
    """Issue 12: the README's "First hour" must work. Every `seg2track` command in it
    parses; the ROS commands name launch arguments and files that exist; the KITTI path
    without images runs here, on the repository's KITTI MOTS annotations, to a table."""
    import ast
    import shlex

    from ament_index_python.packages import get_package_share_directory

    from seg2track_ros.cli import build_parser, main

    from conftest import KITTI_MOTS_GT

    readme = (REPO_ROOT / "README.md").read_text()
    section = _section(readme, "## First hour", "\n## Status")
    commands = _commands(section)
    share = Path(get_package_share_directory("seg2track_ros"))
    seg2track = [c for c in commands if c.startswith("seg2track ")]
    assert len(seg2track) >= 7
    for command in seg2track:
        build_parser().parse_args(shlex.split(command)[1:])  # SystemExit on a bad option

    (launch,) = [c for c in commands if c.startswith("ros2 launch ")]
    assert launch.split()[2:4] == ["seg2track_ros", "tracker.launch.py"]
    tree = ast.parse((share / "launch" / "tracker.launch.py").read_text())
    declared = {
        n.args[0].value
        for n in ast.walk(tree)
        if isinstance(n, ast.Call)
        and getattr(n.func, "id", "") == "DeclareLaunchArgument"
        and isinstance(n.args[0], ast.Constant)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == (
            "PARAMETER_ARGUMENTS"
        ):
            declared |= {k.value for k in node.value.keys}
    given = {arg.split(":=")[0] for arg in launch.split() if ":=" in arg}
    assert given and given <= declared, given - declared
    (rviz,) = [c for c in commands if c.startswith("rviz2 ")]
    relative = rviz.split("$(ros2 pkg prefix seg2track_ros)/")[1]
    assert (share.parents[1] / relative).is_file(), relative
    # Every launch argument mentioned in the prose exists too.
    for name in re.findall(r"`(\w+):=", section):
        assert name in declared, name

    # The weight-free KITTI block, run for real (the annotations ship in test/data).
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dets").mkdir()
    kitti_part = section[section.index("**KITTI MOTS data") :]
    kitti = _commands(kitti_part[: kitti_part.index("```", kitti_part.index("```bash") + 7)])
    assert [shlex.split(c)[1] for c in kitti] == ["simulate-detections", "run", "evaluate"]
    for command in kitti:
        args = shlex.split(command.replace("KITTI_MOTS/instances_txt", str(KITTI_MOTS_GT)))
        assert main([*args[1:], *(["-q"] if args[1] == "run" else [])]) == 0, command
    report = (tmp_path / "report_dm" / "report.md").read_text()
    assert "## car" in report and "HOTA" in report
    assert "seg2track run --detections dets/0002.txt" in report
