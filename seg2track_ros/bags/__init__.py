"""rosbag2 files (via the rosbags library, no rclpy needed): writing, reading, replay."""
