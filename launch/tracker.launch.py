"""Start seg2track_ros' tracker_node with a parameters file and topic remaps.

    ros2 launch seg2track_ros tracker.launch.py \
        image_topic:=/camera/image_raw detections_topic:=/yolo/detections

segmenter, model, checkpoint, device, image_size, mode, publish_overlay and image_transport
override the same parameters in params_file when given; left empty, params_file's values
stand. With image_transport:=compressed the node takes sensor_msgs/CompressedImage from
<image_topic>/compressed.

3-D tracks (tracks_3d, tracks_3d_state, markers): lift3d:=true with lift3d_source:=depth
(remap depth_topic) or lift3d_source:=points (remap points_topic; the transform from
tf2 or the lift3d.static_transform parameter), and camera_info_topic.

Several cameras in one node (one model): cameras:=front,rear (or 'cameras' in a
params_file) and camera_remaps with each camera's topics, comma-separated
'<from>=<to>' pairs of node-relative names:

    ros2 launch seg2track_ros tracker.launch.py cameras:=front,rear \
        camera_remaps:=front/image=/cam_front/image_raw,front/detections=/yolo_front/detections,\
rear/image=/cam_rear/image_raw,rear/detections=/yolo_rear/detections
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

PARAMETER_ARGUMENTS = {
    "segmenter": "sam2, detection-masks, or an installed plugin's name",
    "model": "SAM 2.1 size: tiny, small, base_plus or large",
    "checkpoint": "checkpoint file; 'random' for random weights (tests and benchmarks only)",
    "device": "auto, cpu, cuda or cuda:N",
    "image_size": "side of the square image SAM 2 sees (1024; 256-512 for a look on a CPU)",
    "mode": "realtime (newest frame, drops older ones) or lockstep (every frame, in order)",
    "publish_overlay": "true to publish the bgr8 overlay image",
    "image_transport": "raw (sensor_msgs/Image on image_topic) or compressed"
    " (sensor_msgs/CompressedImage on image_topic/compressed)",
    "lift3d": "true to publish 3-D tracks from camera_info plus depth or points",
    "lift3d_source": "depth (a registered depth image) or points (a PointCloud2)",
}
# Launch arguments whose parameter has another name (launch arguments have no dots).
PARAMETER_NAMES = {"lift3d": "lift3d.enabled", "lift3d_source": "lift3d.source"}
BOOLEAN_PARAMETERS = {"publish_overlay", "lift3d"}
INTEGER_PARAMETERS = {"image_size"}


def parse_cameras(text: str) -> list[str]:
    """'front,rear' -> ['front', 'rear'] (spaces ignored); '' -> [] (params_file's)."""
    return [name.strip() for name in text.split(",") if name.strip()]


def parse_remaps(text: str) -> list[tuple[str, str]]:
    """'front/image=/cam/image_raw,front/detections=/det' -> [(from, to), ...]."""
    remaps = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        source, sep, target = item.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise ValueError(f"camera_remaps item '{item}' is not '<from>=<to>'")
        remaps.append((source.strip(), target.strip()))
    return remaps


def _parameter_overrides(context) -> dict:
    overrides = {}
    cameras = parse_cameras(LaunchConfiguration("cameras").perform(context))
    if cameras:
        overrides["cameras"] = cameras
    for name in PARAMETER_ARGUMENTS:
        value = LaunchConfiguration(name).perform(context)
        if value == "":
            continue
        parameter = PARAMETER_NAMES.get(name, name)
        if name in BOOLEAN_PARAMETERS:
            if value.lower() not in ("true", "false"):
                raise ValueError(f"launch argument {name} must be true or false, got '{value}'")
            overrides[parameter] = value.lower() == "true"
        elif name in INTEGER_PARAMETERS:
            if not value.isdigit():
                raise ValueError(f"launch argument {name} must be an integer, got '{value}'")
            overrides[parameter] = int(value)
        else:
            overrides[parameter] = value
    return overrides


def _tracker_node(context):
    parameters = [LaunchConfiguration("params_file").perform(context)]
    overrides = _parameter_overrides(context)
    if overrides:
        parameters.append(overrides)
    image_topic = LaunchConfiguration("image_topic").perform(context)
    camera_remaps = parse_remaps(LaunchConfiguration("camera_remaps").perform(context))
    return [
        Node(
            package="seg2track_ros",
            executable="tracker_node",
            name="tracker_node",
            namespace=LaunchConfiguration("namespace"),
            parameters=parameters,
            remappings=[
                ("image", LaunchConfiguration("image_topic")),
                # image_transport's name for the compressed stream of the same topic
                ("image/compressed", image_topic.rstrip("/") + "/compressed"),
                ("detections", LaunchConfiguration("detections_topic")),
                ("camera_info", LaunchConfiguration("camera_info_topic")),
                ("depth", LaunchConfiguration("depth_topic")),
                ("points", LaunchConfiguration("points_topic")),
                *camera_remaps,
            ],
            arguments=["--ros-args", "--log-level", LaunchConfiguration("log_level")],
            output="screen",
            emulate_tty=True,
        )
    ]


def generate_launch_description():
    default_params = PathJoinSubstitution(
        [FindPackageShare("seg2track_ros"), "config", "tracker.yaml"]
    )
    arguments = [
        DeclareLaunchArgument(
            "params_file", default_value=default_params, description="tracker_node parameters"
        ),
        DeclareLaunchArgument(
            "image_topic", default_value="image", description="sensor_msgs/Image input"
        ),
        DeclareLaunchArgument(
            "detections_topic",
            default_value="detections",
            description="vision_msgs/Detection2DArray input",
        ),
        DeclareLaunchArgument(
            "camera_info_topic",
            default_value="camera_info",
            description="sensor_msgs/CameraInfo of the colour camera (with lift3d)",
        ),
        DeclareLaunchArgument(
            "depth_topic",
            default_value="depth",
            description="sensor_msgs/Image depth registered to the colour camera (lift3d depth)",
        ),
        DeclareLaunchArgument(
            "points_topic",
            default_value="points",
            description="sensor_msgs/PointCloud2 (lift3d points)",
        ),
        DeclareLaunchArgument("namespace", default_value="", description="node namespace"),
        DeclareLaunchArgument(
            "cameras",
            default_value="",
            description="camera names, comma-separated, for one node serving them all"
            " (empty: params_file's 'cameras', by default one unnamed camera)",
        ),
        DeclareLaunchArgument(
            "camera_remaps",
            default_value="",
            description="per-camera remaps, comma-separated '<from>=<to>' pairs, e.g."
            " front/image=/cam_front/image_raw",
        ),
        DeclareLaunchArgument("log_level", default_value="info", description="logging level"),
    ] + [
        DeclareLaunchArgument(name, default_value="", description=f"{text} (empty: params_file)")
        for name, text in PARAMETER_ARGUMENTS.items()
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=_tracker_node)])
