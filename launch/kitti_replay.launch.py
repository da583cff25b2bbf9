"""Replay a KITTI bag (`seg2track kitti-to-bag`) through the tracker and write results.

    ros2 launch seg2track_ros kitti_replay.launch.py bag:=/data/0002_bag \
        results:=/data/results/0002.txt

Starts `ros2 bag play` (reliable QoS), tracker_node with config/kitti.yaml, and
results_writer, which writes the tracks as a KITTI MOTS results file (frame indices
from the bag's image stamps). `ros2 bag play` does not wait for the tracker: choose a
`rate` the tracker keeps up with (check frames_dropped in /diagnostics), or use
`seg2track replay BAG --lockstep`, which waits for every frame.

The launch ends by itself: results_writer exits once it has written the bag's last
frame, and that ends the launch; if the last frame never comes (frames dropped), the
launch ends `drain` seconds after `ros2 bag play` finished.
"""

from launch import LaunchDescription
from launch.actions import (
    DeclareLaunchArgument,
    ExecuteProcess,
    RegisterEventHandler,
    Shutdown,
    TimerAction,
)
from launch.event_handlers import OnProcessExit
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    bag = LaunchConfiguration("bag")
    kitti_params = PathJoinSubstitution([FindPackageShare("seg2track_ros"), "config", "kitti.yaml"])
    tracker = Node(
        package="seg2track_ros",
        executable="tracker_node",
        name="tracker_node",
        parameters=[LaunchConfiguration("params_file")],
        output="screen",
    )
    writer = Node(
        package="seg2track_ros",
        executable="results_writer",
        name="results_writer",
        parameters=[{"results": LaunchConfiguration("results"), "bag": bag}],
        output="screen",
    )
    play = ExecuteProcess(
        cmd=["ros2", "bag", "play", bag, "--rate", LaunchConfiguration("rate")],
        output="screen",
    )
    return LaunchDescription(
        [
            DeclareLaunchArgument("bag", description="bag folder written by kitti-to-bag"),
            DeclareLaunchArgument("results", description="KITTI MOTS results file to write"),
            DeclareLaunchArgument("params_file", default_value=kitti_params),
            DeclareLaunchArgument("rate", default_value="0.5", description="bag play rate"),
            DeclareLaunchArgument(
                "start_delay", default_value="20.0", description="seconds to load the model"
            ),
            DeclareLaunchArgument(
                "drain",
                default_value="60.0",
                description="seconds the tracker may still work after the bag ended, when"
                " the last frame's tracks have not arrived (frames dropped, or it is behind)",
            ),
            tracker,
            writer,
            TimerAction(period=LaunchConfiguration("start_delay"), actions=[play]),
            RegisterEventHandler(
                OnProcessExit(
                    target_action=writer,
                    on_exit=[Shutdown(reason="results_writer wrote the bag's last frame")],
                )
            ),
            RegisterEventHandler(
                OnProcessExit(
                    target_action=play,
                    on_exit=[
                        TimerAction(
                            period=LaunchConfiguration("drain"),
                            actions=[Shutdown(reason="the bag ended (drain time over)")],
                        )
                    ],
                )
            ),
        ]
    )
