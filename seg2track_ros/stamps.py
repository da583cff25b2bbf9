"""Message stamps as integer nanoseconds, the one key every module pairs and orders by."""

from __future__ import annotations


def header_stamp_ns(header) -> int:
    """``header.stamp`` (std_msgs/Header, from rclpy or rosbags) in nanoseconds."""
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)
