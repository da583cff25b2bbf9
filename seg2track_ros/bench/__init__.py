"""Benchmarks: engine speed and memory vs SAM 2's video predictor, ROS latency."""
