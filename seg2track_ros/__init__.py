"""seg2track_ros: SAM 2 based multi-object tracking and segmentation for ROS 2.

Subpackages (imports point inward, toward the engine):
  engine   ROS-free tracker (no rclpy import anywhere below it)
  ros      thin ROS 2 adapters (nodes, message conversions)
"""

__version__ = "0.1.0"
