"""results_writer ends by itself once the bag's last frame is written (what ends
kitti_replay.launch.py; issue 12), over real DDS with its installed executable."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from seg2track_msgs.msg import TrackedObjectArray

from seg2track_ros.bags.writer import BagFrame, write_bag
from seg2track_ros.datasets import read_kitti_mots
from seg2track_ros.engine.types import Detections


def test_results_writer_exits_after_the_bags_last_frame(ros_context, tmp_path):
    stamps = [5_000_000_000 + i * 100_000_000 for i in range(3)]
    bag = tmp_path / "bag"
    write_bag(
        bag,
        (BagFrame(s, np.zeros((8, 10, 3), np.uint8), Detections.empty()) for s in stamps),
    )
    results = tmp_path / "out" / "0000.txt"
    executable = shutil.which("results_writer")
    assert executable, "results_writer is not on PATH: source env.sh"
    log = (tmp_path / "log.txt").open("w")
    process = subprocess.Popen(
        [
            executable,
            "--ros-args",
            "-r",
            "__ns:=/writer_exit",
            "-p",
            f"results:={results}",
            "-p",
            f"bag:={bag}",
        ],
        env=dict(os.environ),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    node = Node("writer_exit_client", context=ros_context)
    executor = rclpy.executors.SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    publisher = node.create_publisher(TrackedObjectArray, "/writer_exit/tracks", qos)
    try:
        deadline = time.monotonic() + 60
        while publisher.get_subscription_count() == 0:
            assert time.monotonic() < deadline and process.poll() is None, (
                tmp_path / "log.txt"
            ).read_text()
            executor.spin_once(timeout_sec=0.05)
        for stamp in stamps[:2]:
            publisher.publish(_tracks(stamp))
        time.sleep(1.0)
        assert process.poll() is None, "results_writer exited before the last frame"
        publisher.publish(_tracks(stamps[-1]))
        process.wait(timeout=30)  # without the fix it spins forever: TimeoutExpired
        assert process.returncode == 0, (tmp_path / "log.txt").read_text()
        assert results.is_file()
        assert read_kitti_mots(results) == {}  # frames without tracks have no lines
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=20)
        log.close()
        executor.shutdown()
        node.destroy_node()


def _tracks(stamp_ns: int) -> TrackedObjectArray:
    message = TrackedObjectArray()
    message.header.stamp.sec = stamp_ns // 1_000_000_000
    message.header.stamp.nanosec = stamp_ns % 1_000_000_000
    return message
