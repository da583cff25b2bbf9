"""The ROS-free Seg2Track engine. Nothing below this package imports rclpy."""
