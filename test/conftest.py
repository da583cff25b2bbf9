"""Shared fixtures. Tests talk over real Fast DDS; each pytest session gets its own
ROS_DOMAIN_ID (set before any rclpy.init) so parallel runs never hear each other."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# Test data lives inside the repository (a plain clone must pass): see test/data/.
TEST_DATA = Path(__file__).resolve().parent / "data"
KITTI_MOTS_GT = TEST_DATA / "kitti_mots" / "instances_txt"
# `seg2track run/replay` arguments for SAM 2 tiny with random weights at 64 px, its
# quality thresholds relaxed so that tracks persist and results files have lines.
RANDOM_WEIGHT_SETTINGS = [
    arg
    for value in (
        "model=tiny",
        "checkpoint=random",
        "device=cpu",
        "image_size=64",
        "tracker.lost_logit=-1000.0",
        "tracker.reliable_logit=-999.0",
        "tracker.removal_quality=0.0",
    )
    for arg in ("--set", value)
]

if "SEG2TRACK_TEST_DOMAIN_ID" not in os.environ:
    os.environ["SEG2TRACK_TEST_DOMAIN_ID"] = str(random.randint(100, 200))
os.environ["ROS_DOMAIN_ID"] = os.environ["SEG2TRACK_TEST_DOMAIN_ID"]
# Keep DDS discovery on this host only.
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")


@pytest.fixture
def ros_context():
    """An initialised rclpy context, shut down after the test."""
    import rclpy
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context)
    try:
        yield context
    finally:
        context.try_shutdown()


@pytest.fixture(scope="session")
def kitti_mots_gt() -> Path:
    """The real KITTI MOTS ground truth in test/data/kitti_mots (three sequences)."""
    if not KITTI_MOTS_GT.is_dir():
        pytest.fail(f"KITTI MOTS ground truth not found at {KITTI_MOTS_GT}")
    return KITTI_MOTS_GT
