""".ci/run tests a clone the same way whether or not the caller sourced env.sh: what a
sourced environment leaks is dropped first (.ci/clean_env.sh)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CLEAN_ENV = REPO / ".ci" / "clean_env.sh"
# Set by bash itself, not by the caller.
BASH_OWN = {"PWD", "OLDPWD", "SHLVL", "_"}
PLAIN = {
    "HOME": "/root",
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "ROS_DISTRO": "jazzy",
    "PIP_FIND_LINKS": "/opt/wheels",
    "TMPDIR": "/tmp",
}


def _environment_after(setup: str, env: dict[str, str]) -> dict[str, str]:
    """The environment bash exports after ``setup`` and then .ci/clean_env.sh."""
    script = f"""
        set -euo pipefail
        {setup}
        CI_REPO={REPO}
        source {CLEAN_ENV}
        unset CI_REPO CI_DROPPED
        env -0
    """
    out = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, check=True, cwd=REPO
    ).stdout
    pairs = (item.split(b"=", 1) for item in out.split(b"\0") if item)
    return {k.decode(): v.decode() for k, v in pairs if k.decode() not in BASH_OWN}


def test_clean_env_makes_a_sourced_shell_equal_to_a_plain_one():
    if not (REPO / ".venv" / "bin" / "python").is_file() or not (REPO / "install").is_dir():
        pytest.fail("no environment to source: run `make env` first")
    plain = _environment_after("", PLAIN)
    assert plain == PLAIN, "cleaning dropped something a plain shell needs"

    # A shell that sourced env.sh, then ran inside the venv's bootstrapped Python and
    # had a test's ROS settings exported.
    sourced = _environment_after(
        f"""
        set +u
        source {REPO}/env.sh
        set -u
        export _ROS_WHEELS_BOOTSTRAP_COMPLETE=1 ROS_DOMAIN_ID=150
        export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST COLCON_PREFIX_PATH={REPO}/install
        libs="$VIRTUAL_ENV/lib/python3.11/site-packages/ros_rcl.libs"
        export LD_LIBRARY_PATH="$libs:$LD_LIBRARY_PATH"
        test -n "$VIRTUAL_ENV" && test -n "$AMENT_PREFIX_PATH" && test -n "$PYTHONPATH"
        """,
        PLAIN,
    )
    assert sourced == plain


def test_clean_env_keeps_unrelated_path_entries_and_drops_another_checkouts(tmp_path):
    other = tmp_path / "other_checkout"
    env = {
        **PLAIN,
        "PATH": f"{other}/.venv/bin:/opt/tool/bin:{other}/install/seg2track_ros/lib/"
        "seg2track_ros:/usr/bin:/bin",
        "LD_LIBRARY_PATH": f"/opt/cuda/lib64:{other}/install/seg2track_msgs/lib",
        "VIRTUAL_ENV": f"{other}/.venv",
        "SEG2TRACK_ROOT": str(other),
        "ROS_VERSION": "2",
    }
    cleaned = _environment_after("", env)
    assert cleaned["PATH"] == "/opt/tool/bin:/usr/bin:/bin"
    assert cleaned["LD_LIBRARY_PATH"] == "/opt/cuda/lib64"
    assert "VIRTUAL_ENV" not in cleaned and "SEG2TRACK_ROOT" not in cleaned
    assert "ROS_VERSION" not in cleaned and cleaned["ROS_DISTRO"] == "jazzy"


def test_ci_run_cleans_the_environment_before_it_tests():
    run = (REPO / ".ci" / "run").read_text()
    assert 'source "$repo/.ci/clean_env.sh"' in run
    assert run.index(".ci/clean_env.sh") < run.rindex("make test")
