"""ROS 2 adapters over the engine: message conversions and nodes (rclpy lives here only)."""
