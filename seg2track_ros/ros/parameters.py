"""tracker_node's ROS parameters: declaration (default, description, range) and reading
into the engine's typed configs plus the node's own settings.

Engine settings keep their config names: the segmenter's at the top level (``model``,
``checkpoint``, ``device``, ``image_size``, ...), the track manager's under ``tracker.``
(``tracker.max_weak_frames``), per-class thresholds under
``tracker.classes.<class_id>.<name>`` for every id in ``tracker.class_ids`` and
``tracker.default_class.<name>`` for the rest.
"""

from __future__ import annotations

from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException

from seg2track_ros.engine.config import MAX_IMAGE_SIZE, MODEL_SIZES, EngineConfig
from seg2track_ros.params import (
    CHOICES,
    Lift3DSettings,
    NodeSettings,
    ParameterError,
    config_from_values,
    scalar_fields,
)

# Parameters every rclpy node has; not ours to document.
RCLPY_PARAMETERS = frozenset({"use_sim_time", "start_type_description_service"})


NODE_DESCRIPTIONS = {
    "image_topic": "sensor_msgs/Image input topic (node-relative; remapping works too); with"
    " image_transport compressed the node subscribes to '<image_topic>/compressed'",
    "image_transport": "raw: sensor_msgs/Image on image_topic; compressed:"
    " sensor_msgs/CompressedImage (JPEG/PNG, decoded with OpenCV) on"
    " '<image_topic>/compressed', image_transport's naming",
    "expected_image_rate": "Hz the camera publishes at, to count images lost on the way"
    " (diagnostics images_missed: gaps in the image stamps); 0: estimated from the median"
    " stamp period of the last 30 images",
    "detections_topic": "vision_msgs/Detection2DArray input topic (node-relative)",
    "input_reliability": "QoS of the inputs: best_effort (SensorDataQoS, cameras) or reliable"
    " (replay, lockstep evaluation)",
    "input_depth": "QoS history depth of the inputs",
    "mode": "realtime: never block, track the newest pair, drop and count older ones;"
    " lockstep: track every frame in order (replay and evaluation)",
    "sync_slop": "seconds: 0 pairs image and detections by exact stamp; > 0 pairs the"
    " nearest stamps within this",
    "sync_timeout": "seconds an image waits for its detections before it is tracked without",
    "sync_queue": "images (and detection messages) buffered while waiting to pair",
    "lockstep_queue_bytes": "lockstep mode: bytes of paired images waiting to be tracked at"
    " most; beyond it the oldest are dropped and counted (rejected_lockstep_queue_full)",
    "max_detections": "at most this many detections per message (the highest scores are kept)",
    "max_image_pixels": "images with more pixels are rejected",
    "publish_overlay": "publish a bgr8 image with coloured masks and ids on 'overlay'",
    "diagnostics_period": "seconds between /diagnostics messages",
    "autostart": "configure and activate at start (no lifecycle manager needed)",
    "segmenter": "the engine's segmenter, by name: sam2 (SAM 2: model, checkpoint, image_size,"
    " ...), detection-masks (no model: each detection's filled box is its mask, coasting"
    " between detections), or one another package registers in the entry-point group"
    " seg2track_ros.segmenters",
    "class_map": "rename detection classes before tracking, so a benchmark class's thresholds"
    " apply: empty = keep the detector's classes; 'coco' (person/0 -> pedestrian, car/2 ->"
    " car), items like 'coco,truck=car', or a YAML file; other classes keep their name",
    "camera_gather_window": "several cameras: seconds the worker waits, once one camera's"
    " frame is ready, for the frames of the other cameras seen in the last"
    " few ticks, so that one engine call (one batched image-encoder call) tracks them"
    " together; at most this much latency is added to a frame; 0: track what is queued at"
    " once (the cameras batch only when frames wait for the engine)",
    "cameras": "camera names; one node serves them all with one model. Each camera"
    " '<camera>' reads '<camera>/<image_topic>' and '<camera>/<detections_topic>' (or"
    " those topics with '{camera}' replaced by the name, where they contain it) and"
    " publishes '<camera>/tracks', '<camera>/tracked_detections',"
    " '<camera>/instance_labels' (and '<camera>/overlay'); [\"\"] (default): one unnamed"
    " camera on the plain topics",
    "inject_fault_every": "test hook, 0 (default) = off: every N-th frame the engine fails"
    " inside Tracker.step with an injected exception, to check that a fault costs only its"
    " frame",
}

SEGMENTER_DESCRIPTIONS = {
    "model": f"SAM 2.1 model size: {', '.join(MODEL_SIZES)}",
    "checkpoint": "checkpoint file; empty: the default cache location for the model;"
    " 'random': random weights, meaningless masks (tests and benchmarks only)",
    "device": "auto (CUDA when available), cpu, cuda or cuda:N",
    "image_size": "side of the square image SAM 2 sees (official models: 1024; at most"
    f" {MAX_IMAGE_SIZE}: memory and time grow with its square)",
    "bf16": "bfloat16 autocast on CUDA",
    "compile": (
        "torch.compile the image encoder and the per-object heads over bucketed object"
        " batches (CUDA; slow first frames, once per bucket)"
    ),
    "max_conditioning_frames": "prompted frames kept per object (the first prompt stays;"
    " the oldest re-prompt is dropped first)",
    "max_object_pointers": "object pointers attended to per object, at least 2 (SAM 2 uses 16)",
    "objects_per_call": "at most this many objects per SAM 2 call; 0: auto (all on CUDA,"
    " a few at a time on the CPU, where smaller calls stay in cache)",
}

TRACKER_DESCRIPTIONS = {
    "min_association_iou": "pairs with IoU(track mask, detection box) below this never match",
    "min_mask_in_box": "a detection with less than 1 - addition_threshold of its box inside a"
    " track's mask matches it only if at least this fraction of the mask is inside the box",
    "iou_weight": "association cost weight of 1 - IoU(mask, box)",
    "centroid_weight": "association cost weight of the mask-centroid to box-centre distance"
    " over the box diagonal",
    "confidence_weight": "association cost multiplier (1 + w * (1 - detection score))",
    "match_across_classes": "let a detection match a track of another class",
    "removal_quality": "predicted IoU below this makes a frame weak (LOST)",
    "lost_logit": "object-score logit at or below this makes a frame lost (LOST)",
    "max_weak_frames": "a track is removed after this many consecutive weak frames"
    " (Seg2Track-SAM2)",
    "max_lost_frames": "a track is removed after this many consecutive lost frames (SAM2MOT)",
    "reinforcement_quality": "a matched track with predicted IoU below this is re-prompted"
    " (Seg2Track-SAM2's rule, the only re-prompt rule)",
    "reliable_logit": "logit above this (and predicted IoU >= reinforcement_quality) is"
    " reliable: a missed detection does not lower a confirmed track's existence",
    "occlusion_iou": "two tracks' masks overlapping with IoU above this: one is occluded",
    "occlusion_logit_margin": "logits closer than this: the one that varied more is occluded",
    "occlusion_history": "frames of logit history used for that variance",
    "birth_existence": "existence probability of a new track before its first update",
    "survival_probability": "per-frame survival probability of the existence filter",
    "detection_probability": "detection probability of a fully visible object",
    "confirm_existence": "a track is CONFIRMED once its existence reaches this (and"
    " min_confirm_frames)",
    "min_confirm_frames": "a track is CONFIRMED only after this many frames with an associated"
    " detection (its birth frame counts); 1 confirms on one confident detection",
    "min_existence": "a track whose existence falls below this is removed as a ghost",
    "max_tracks": "at most this many tracks at once",
}

LIFT3D_DESCRIPTIONS = {
    "enabled": "publish 3-D tracks (tracks_3d, tracks_3d_state, markers) from camera_info plus"
    " a depth image or a point cloud; off: no 3-D inputs are subscribed, and the 2-D outputs"
    " never depend on them either way",
    "source": "depth: a depth image registered to the colour camera (16UC1 or 32FC1);"
    " points: a sensor_msgs/PointCloud2 and the camera-from-sensor transform",
    "camera_info_topic": "sensor_msgs/CameraInfo of the colour camera (node-relative; K is"
    " used, the image is taken as rectified)",
    "depth_topic": "sensor_msgs/Image depth input (source depth; node-relative)",
    "points_topic": "sensor_msgs/PointCloud2 input (source points; node-relative)",
    "pair_slop": "seconds: a depth image or cloud pairs with the tracked image of the nearest"
    " stamp within this (0: equal stamps; LiDAR scans need a few ms, KITTI about 0.05)",
    "depth_scale": "metres per unit of a 16UC1 depth image (0.001: millimetres); 32FC1 is metres",
    "min_range": "metres: depths (and point depths along the camera axis) below this are invalid",
    "max_range": "metres: depths beyond this are invalid",
    "erosion": "pixels each mask is eroded by before its 3-D points are taken (depth bleeds"
    " across object edges)",
    "min_valid_points": "a track with fewer valid 3-D points in its eroded mask gets no 3-D"
    " output on that frame",
    "process_noise": "constant-velocity filter: white-acceleration spectral density (m^2/s^3)"
    " per axis; higher follows manoeuvres faster, lower smooths more",
    "measurement_noise": "constant-velocity filter: standard deviation of a measured centre"
    " per metre of range (plus 0.05 m)",
    "static_transform": "camera-from-sensor transform of the cloud as 'x y z qx qy qz qw'"
    " (metres, quaternion: a point in the sensor frame maps into the image's optical frame);"
    " empty: tf2 looks it up (where tf2_ros is installed)",
    "object_sizes": "classes whose whole 3-D box is estimated, with their typical size, as"
    " 'class=LENGTHxWIDTHxHEIGHT' items in metres separated by commas: an upright box of"
    " that size is fitted to the track's visible points (its heading by L-shape fitting)"
    " and completed away from the sensor; its centre, size and yaw are published. Other"
    " classes get the median and extent of their visible surface. Empty: none",
    "publish_markers": "also publish visualization_msgs/MarkerArray on 'markers' (a box and"
    " an id label per track) for RViz",
}

CLASS_DESCRIPTIONS = {
    "detection_threshold": "detections scoring below this are ignored",
    "addition_threshold": "an unmatched detection starts a track when more than this fraction"
    " of its box is uncovered by tracks",
    "reinforcement_detection_score": "a pending track is re-prompted with a matched detection"
    " scoring at least this",
}

# Ranges enforced by ROS (set_parameters is refused outside them) and by reading.
_UNIT = (0.0, 1.0)
FLOAT_RANGES = {
    "iou_weight": (0.0, 10.0),
    "centroid_weight": (0.0, 10.0),
    "confidence_weight": (0.0, 10.0),
    "lost_logit": (-1000.0, 1000.0),
    "reliable_logit": (-1000.0, 1000.0),
    "occlusion_logit_margin": (0.0, 100.0),
    "sync_slop": (0.0, 10.0),
    "sync_timeout": (0.0, 60.0),
    "diagnostics_period": (0.1, 60.0),
    "expected_image_rate": (0.0, 1000.0),
    "pair_slop": (0.0, 10.0),
    "depth_scale": (1e-6, 1000.0),
    "min_range": (0.0, 1000.0),
    "max_range": (0.01, 10000.0),
    "process_noise": (0.0, 1000.0),
}
INT_RANGES = {
    "image_size": (64, MAX_IMAGE_SIZE, 64),
    "max_conditioning_frames": (1, 64, 1),
    "max_object_pointers": (2, 64, 1),
    "objects_per_call": (0, 1024, 1),
    "max_weak_frames": (1, 10_000, 1),
    "max_lost_frames": (1, 10_000, 1),
    "min_confirm_frames": (1, 10_000, 1),
    "occlusion_history": (1, 1000, 1),
    "max_tracks": (1, 10_000, 1),
    "input_depth": (1, 1000, 1),
    "sync_queue": (1, 1000, 1),
    "lockstep_queue_bytes": (1, 1 << 40, 1),
    "max_detections": (1, 100_000, 1),
    "max_image_pixels": (1, 1 << 30, 1),
    "inject_fault_every": (0, 1_000_000, 1),
    "erosion": (0, 50, 1),
    "min_valid_points": (1, 1_000_000, 1),
}


def _descriptor(name: str, leaf: str, description: str, default: Any) -> ParameterDescriptor:
    descriptor = ParameterDescriptor(name=name, description=description)
    if leaf in CHOICES:
        descriptor.additional_constraints = f"one of: {', '.join(CHOICES[leaf])}"
    if isinstance(default, bool):
        return descriptor
    if isinstance(default, int) and leaf in INT_RANGES:
        low, high, step = INT_RANGES[leaf]
        descriptor.integer_range = [IntegerRange(from_value=low, to_value=high, step=step)]
    elif isinstance(default, float):
        low, high = FLOAT_RANGES.get(leaf, _UNIT)
        descriptor.floating_point_range = [FloatingPointRange(from_value=low, to_value=high)]
    return descriptor


_fields = scalar_fields


def _declare(
    node, name: str, leaf: str, default: Any, description: str, errors: dict[str, str]
) -> None:
    if node.has_parameter(name):
        return
    descriptor = _descriptor(name, leaf, description, default)
    try:
        node.declare_parameter(name, default, descriptor)
    except (InvalidParameterValueException, InvalidParameterTypeException) as error:
        # A bad value from a YAML file or the command line must not crash the process:
        # keep the default and fail configure with this message until it is set right.
        errors[name] = f"parameter '{name}': {error}"
        node.declare_parameter(name, default, descriptor, ignore_override=True)


def declare_parameters(node) -> dict[str, str]:
    """Declare every tracker_node parameter on `node` (idempotent).

    Returns {parameter: message} for overrides that were refused (wrong type or out of
    range); pass it to read_parameters, which raises for those still unset.
    """
    errors: dict[str, str] = {}
    defaults = EngineConfig()
    for name, default in _fields(NodeSettings()).items():
        _declare(node, name, name, default, NODE_DESCRIPTIONS[name], errors)
    for name, default in _fields(defaults.segmenter).items():
        _declare(node, name, name, default, SEGMENTER_DESCRIPTIONS[name], errors)
    for name, default in _fields(Lift3DSettings()).items():
        _declare(node, f"lift3d.{name}", name, default, LIFT3D_DESCRIPTIONS[name], errors)
    for name, default in _fields(defaults.tracker).items():
        _declare(node, f"tracker.{name}", name, default, TRACKER_DESCRIPTIONS[name], errors)
    class_ids = list(defaults.tracker.classes)
    _declare(
        node,
        "tracker.class_ids",
        "class_ids",
        class_ids,
        "class ids with their own thresholds under tracker.classes.<id>.*",
        errors,
    )
    for name, default in _fields(defaults.tracker.default_class).items():
        _declare(
            node,
            f"tracker.default_class.{name}",
            name,
            default,
            CLASS_DESCRIPTIONS[name] + " (classes not in tracker.class_ids)",
            errors,
        )
    for class_id in node.get_parameter("tracker.class_ids").value:
        base = defaults.tracker.classes.get(class_id, defaults.tracker.default_class)
        for name, default in _fields(base).items():
            _declare(
                node,
                f"tracker.classes.{class_id}.{name}",
                name,
                default,
                f"{CLASS_DESCRIPTIONS[name]} (class '{class_id}')",
                errors,
            )
    return errors


def read_parameters(
    node, refused: dict[str, str] | None = None
) -> tuple[EngineConfig, NodeSettings]:
    """The engine config and node settings from `node`'s parameters; ParameterError names
    the offending parameter. `refused` is declare_parameters' result (entries are
    removed by the caller once the parameter has been set to a valid value)."""
    if refused:
        raise ParameterError("; ".join(refused[name] for name in sorted(refused)))

    return config_from_values(lambda name: node.get_parameter(name).value)


def defaults_yaml() -> str:
    """config/tracker.yaml: every parameter with its default and description as comments.

    Regenerate with ``python -m seg2track_ros.ros.parameters > config/tracker.yaml``; a
    test checks the file equals this output.
    """
    import rclpy
    from rclpy.context import Context
    from rclpy.node import Node

    context = Context()
    rclpy.init(context=context, args=[])
    try:
        node = Node("tracker_node_defaults", context=context, start_parameter_services=False)
        declare_parameters(node)
        lines = [
            "# tracker_node parameters with their defaults (generated by",
            "# `python -m seg2track_ros.ros.parameters`; edit a copy, or override single values:",
            "#   ros2 launch seg2track_ros tracker.launch.py params_file:=my.yaml",
            "# Values outside a parameter's range fail configure with the parameter's name.",
            "/**:",
            "  ros__parameters:",
        ]
        for name in sorted(node._parameters):
            if name in RCLPY_PARAMETERS:
                continue
            descriptor = node.describe_parameter(name)
            comment = descriptor.description
            if descriptor.additional_constraints:
                comment += f" ({descriptor.additional_constraints})"
            for r in descriptor.floating_point_range:
                comment += f" [{r.from_value:g}, {r.to_value:g}]"
            for r in descriptor.integer_range:
                comment += f" [{r.from_value}, {r.to_value}]"
            lines.append(f"    # {comment}")
            lines.append(f"    {name}: {_yaml_value(node.get_parameter(name).value)}")
        node.destroy_node()
    finally:
        context.try_shutdown()
    return "\n".join(lines) + "\n"


def _yaml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_yaml_value(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value)
    return str(value)


if __name__ == "__main__":
    print(defaults_yaml(), end="")
