"""What the colcon install provides: the ament index, share files, interface hashes,
colcon's view of the repository and a working `source env.sh`."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from ament_index_python.packages import get_package_share_directory, get_packages_with_prefixes

from conftest import REPO_ROOT

# Type hashes of the real vision_msgs 4.1.1 built with the ROS 2 wheels (Jazzy and
# Kilted alike). The fallback must generate exactly these to interoperate on the wire.
# The 3-D ones: ros-perception/vision_msgs at tag 4.1.1 (commit e77fa2d), its vision_msgs/
# folder built with colcon in a scratch workspace outside this repository against the
# Jazzy wheels of this venv (AMENT_PREFIX_PATH=CMAKE_PREFIX_PATH=.venv, -DBUILD_TESTING=OFF,
# as docs/environment.md describes), read from install/vision_msgs/share/vision_msgs/
# msg/<Message>.json; that build gave the two 2-D hashes above as well.
VISION_MSGS_HASHES = {
    "Detection2DArray": "RIHS01_214274120007f4a683866481336b70310268cfa107aebe9d594a6acf75bda968",
    "Detection2D": "RIHS01_0d12b69df5c593b3455b7346fac8205437a7d4bcb09b9e0e0b2dde787ded38ea",
    "ObjectHypothesisWithPose": (
        "RIHS01_41c12344c0396c48b81df12467c192d99b2a0eb1463c5c37194e4223251c80bc"
    ),
    "BoundingBox3D": "RIHS01_bbb73a65c163d7f9bb29009c7bde9f7faa576bd2d23299c4511d19230dab4698",
    "Detection3D": "RIHS01_ddd703be132ab0b69d33121f1bb034132bfbb3b0ac5f9fb1516005ba1c8a265b",
    "Detection3DArray": "RIHS01_793f5eab9595ac1c0da07873cc859db42eae51f0ee76056db8562515d830e018",
}


def _own_hash(share: Path, message: str, package: str) -> str:
    description = json.loads((share / "msg" / f"{message}.json").read_text())
    wanted = f"{package}/msg/{message}"
    (entry,) = [h for h in description["type_hashes"] if h["type_name"] == wanted]
    return entry["hash_string"]


def test_ament_index_lists_our_packages():
    packages = get_packages_with_prefixes()
    for name in ("seg2track_ros", "seg2track_msgs", "vision_msgs"):
        assert name in packages, f"{name} missing from the ament index"


def test_launch_and_config_files_are_installed():
    share = Path(get_package_share_directory("seg2track_ros"))
    for folder, pattern in (("launch", "*.launch.py"), ("config", "*.yaml")):
        source = sorted(p.name for p in (REPO_ROOT / folder).glob(pattern))
        installed = sorted(p.name for p in (share / folder).glob(pattern))
        assert source, f"no {folder} files in the repository"
        assert installed == source
    assert (share / "launch" / "tracker.launch.py").is_file()
    assert (share / "config" / "tracker.yaml").is_file()
    assert (share / "package.xml").is_file()


@pytest.mark.parametrize("message", sorted(VISION_MSGS_HASHES))
def test_vision_msgs_type_hashes_equal_the_real_package(message):
    share = Path(get_package_share_directory("vision_msgs"))
    assert _own_hash(share, message, "vision_msgs") == VISION_MSGS_HASHES[message]


def test_seg2track_msgs_refer_to_the_vision_msgs_types():
    share = Path(get_package_share_directory("seg2track_msgs"))
    description = json.loads((share / "msg" / "TrackedObject.json").read_text())
    referenced = {
        d["type_name"] for d in description["type_description_msg"]["referenced_type_descriptions"]
    }
    assert "vision_msgs/msg/BoundingBox2D" in referenced
    assert "seg2track_msgs/msg/RLEMask" in referenced
    assert _own_hash(share, "TrackedObjectArray", "seg2track_msgs").startswith("RIHS01_")


def test_colcon_finds_both_packages_with_the_readme_base_paths():
    result = subprocess.run(
        ["colcon", "list", "--names-only", "--base-paths", ".", "seg2track_msgs"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert sorted(result.stdout.split()) == ["seg2track_msgs", "seg2track_ros"]


def _plain_shell(command: str) -> subprocess.CompletedProcess:
    """Run a command in bash with a minimal environment (no venv, no ROS variables)."""
    env = {
        "HOME": os.environ.get("HOME", "/tmp"),
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "ROS_DOMAIN_ID": os.environ["ROS_DOMAIN_ID"],
    }
    return subprocess.run(
        ["bash", "-c", command], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )


def test_env_sh_gives_a_working_plain_shell():
    result = _plain_shell(
        "source env.sh && python -c 'import rclpy, seg2track_msgs.msg, vision_msgs.msg;"
        " import seg2track_ros; print(seg2track_ros.__file__)'"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(REPO_ROOT / "seg2track_ros" / "__init__.py")


def test_bootstrap_second_run_changes_nothing():
    started = time.monotonic()
    distro = (REPO_ROOT / ".venv" / ".seg2track" / "distro").read_text().strip()
    result = _plain_shell(f"ROS_DISTRO={distro} bash scripts/bootstrap.sh")
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    for step in ("creating .venv", "installing", "colcon build", "rewriting"):
        assert step not in result.stdout, f"an up-to-date bootstrap repeated '{step}'"
    assert "done" in result.stdout
    print(f"bootstrap no-op run: {elapsed:.1f} s")


def _readme_command(readme: str, start: str) -> str:
    """A shell command from the README, its continuation lines joined."""
    import re

    match = re.search(re.escape(start) + r"(?:[^\n]*\\\n)*[^\n]*", readme)
    assert match, f"README has no `{start}` command"
    return " ".join(match.group(0).replace("\\\n", " ").split())


def test_readme_rosdep_command_finds_the_nested_interface_package():
    """Issue 12: `rosdep install --from-paths src --ignore-src` never finds the nested
    seg2track_msgs (rosdep, like colcon, stops at a package), so it cannot resolve the
    key and fails. The README's command names both paths; this checks them with the
    package finder rosdep itself uses (catkin_pkg), in a clone at src/seg2track_ros."""
    from catkin_pkg.packages import find_packages

    readme = (REPO_ROOT / "README.md").read_text()
    command = _readme_command(readme, "rosdep install ")
    paths = command.split("--from-paths ")[1].split(" -")[0].split()
    clone = "src/seg2track_ros"
    assert all(p.startswith(clone) for p in paths), paths
    found = set()
    for path in paths:
        found |= {p.name for p in find_packages(str(REPO_ROOT / path[len(clone) + 1 :])).values()}
    assert found == {"seg2track_ros", "seg2track_msgs"}
    # The plain command sees the root package only: why both paths are needed.
    assert {p.name for p in find_packages(str(REPO_ROOT)).values()} == {"seg2track_ros"}
    assert "--ignore-src" in command


def test_package_xml_python_keys_are_the_readme_keys_and_numpy_is_pinned():
    """The rosdep keys for the Python libraries (rosdistro rosdep/python.yaml names) are
    declared in package.xml and listed in the README; the pip line keeps NumPy below 2
    (Ubuntu 24.04's cv_bridge is built against NumPy 1.26)."""
    import re

    from catkin_pkg.package import parse_package

    package = parse_package(str(REPO_ROOT / "package.xml"))
    keys = {d.name for d in package.exec_depends if d.name.startswith("python3-")}
    assert {"python3-scipy", "python3-opencv", "python3-matplotlib", "python3-tqdm"} <= keys
    assert "python3-pil" in keys  # Pillow's key; python3-pillow does not exist
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme[readme.index("## On a ROS 2 system") : readme.index("## Run it on a robot")]
    listed = set(re.findall(r"`(python3-[a-z0-9-]+)`", section)) - {"python3-pillow"}
    assert listed == keys
    pip = _readme_command(section, "$PIP ")
    assert '"numpy<2"' in pip
    # Libraries with an apt key come from apt, not pip (pip's would pull NumPy 2).
    for name in ("scipy", "opencv", "matplotlib", "tqdm", "pillow"):
        assert f" {name}" not in pip, name


def test_rviz_config_is_installed_and_shows_the_image_outputs():
    """config/seg2track.rviz (setup.py data_files) shows `overlay` and `instance_labels`
    as Image displays with the node's output QoS (reliable)."""
    import yaml

    share = Path(get_package_share_directory("seg2track_ros"))
    installed = share / "config" / "seg2track.rviz"
    assert installed.read_text() == (REPO_ROOT / "config" / "seg2track.rviz").read_text()
    config = yaml.safe_load(installed.read_text())
    displays = config["Visualization Manager"]["Displays"]
    images = {d["Topic"]["Value"]: d for d in displays if d["Class"].endswith("/Image")}
    assert set(images) == {"/overlay", "/instance_labels"}
    for display in images.values():
        assert display["Enabled"] is True
        assert display["Topic"]["Reliability Policy"] == "Reliable"
