"""Issue 12, defect 1: tracker_node is found the way `ros2 run` finds it (the ament
index, then <prefix>/lib/seg2track_ros/), not on PATH."""

from __future__ import annotations

import os
import stat
import sys

import pytest

from seg2track_ros.executables import ExecutableNotFoundError, find_executable, package_prefix


def _fake_prefix(root, *, executable=True):
    (root / "share/ament_index/resource_index/packages").mkdir(parents=True)
    (root / "share/ament_index/resource_index/packages/seg2track_ros").write_text("")
    folder = root / "lib/seg2track_ros"
    folder.mkdir(parents=True)
    node = folder / "tracker_node"
    node.write_text("#!/bin/sh\n")
    if executable:
        node.chmod(node.stat().st_mode | stat.S_IXUSR)
    return node


@pytest.fixture(params=["ament_index_python", "fallback"])
def index_lookup(request, monkeypatch):
    """Both lookups: ament_index_python's, and ours when that module is missing."""
    if request.param == "fallback":
        monkeypatch.setitem(sys.modules, "ament_index_python", None)
        monkeypatch.setitem(sys.modules, "ament_index_python.packages", None)
    else:
        pytest.importorskip("ament_index_python")
    return request.param


def test_found_through_the_ament_index_without_path(tmp_path, monkeypatch, index_lookup):
    other = tmp_path / "other"
    (other / "share").mkdir(parents=True)
    node = _fake_prefix(tmp_path / "install")
    monkeypatch.setenv("AMENT_PREFIX_PATH", f"{other}{os.pathsep}{tmp_path / 'install'}")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert package_prefix() == tmp_path / "install"
    assert find_executable("tracker_node") == node


def test_the_error_says_what_was_searched(tmp_path, monkeypatch, index_lookup):
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(tmp_path / "nowhere"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty_bin"))
    with pytest.raises(ExecutableNotFoundError) as error:
        find_executable("tracker_node")
    message = str(error.value)
    assert str(tmp_path / "nowhere") in message
    assert "share/ament_index/resource_index/packages/seg2track_ros" in message
    assert "PATH" in message and "install/setup.bash" in message
    # A prefix without the executable names the file it expected.
    _fake_prefix(tmp_path / "install", executable=False)
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(tmp_path / "install"))
    with pytest.raises(ExecutableNotFoundError, match="lib/seg2track_ros/tracker_node"):
        find_executable("tracker_node")


def test_path_is_the_last_resort_without_an_index(tmp_path, monkeypatch, index_lookup):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    node = bin_dir / "tracker_node"
    node.write_text("#!/bin/sh\n")
    node.chmod(0o755)
    monkeypatch.setenv("AMENT_PREFIX_PATH", "")
    monkeypatch.setenv("PATH", str(bin_dir))
    assert find_executable("tracker_node") == node
