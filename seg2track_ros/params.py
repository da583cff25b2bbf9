"""tracker_node's parameter names <-> the engine's typed configs, without ROS.

One mapping serves the node (values from rclpy parameters) and the ROS-free tools
(`seg2track run` reads the same YAML files), so both build identical configs:
segmenter settings at the top level (``model``, ``image_size``, ...), track manager
settings under ``tracker.``, per-class thresholds under ``tracker.classes.<id>.<name>``
for every id in ``tracker.class_ids`` and ``tracker.default_class.<name>`` for the rest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seg2track_ros.engine.config import (
    MODEL_SIZES,
    ClassThresholds,
    ConfigError,
    EngineConfig,
    SegmenterConfig,
    TrackerConfig,
)


class ParameterError(ConfigError):
    """An invalid parameter value; the message names the parameter."""


@dataclass(frozen=True)
class Lift3DSettings:
    """tracker_node's optional 3-D output (parameters ``lift3d.<name>``); off by default.

    ``source`` picks the 3-D input: ``depth`` (a depth image registered to the colour
    camera) or ``points`` (a PointCloud2 plus the camera-from-sensor transform). The
    engine's LiftConfig and MotionConfig take the numeric settings of the same names.
    """

    enabled: bool = False
    source: str = "depth"
    camera_info_topic: str = "camera_info"
    depth_topic: str = "depth"
    points_topic: str = "points"
    # seconds: a depth image or cloud pairs with the tracked image of the nearest stamp
    # within this (LiDAR scans are not triggered with the camera: KITTI's are ~5 ms off)
    pair_slop: float = 0.0
    depth_scale: float = 0.001
    min_range: float = 0.3
    max_range: float = 80.0
    erosion: int = 2
    min_valid_points: int = 20
    process_noise: float = 1.0
    measurement_noise: float = 0.02
    # camera-from-sensor as "x y z qx qy qz qw" (metres, unit quaternion); empty: look
    # it up with tf2 (where installed) from the cloud's frame_id to the image's frame_id
    static_transform: str = ""
    publish_markers: bool = True
    # class=LENGTHxWIDTHxHEIGHT (metres): these classes get the whole object's box
    # (amodal), the others their visible surface's; the defaults are KITTI's typical
    # car, pedestrian and cyclist sizes (rounded means of its 3-D labels).
    object_sizes: str = "car=3.9x1.6x1.5,pedestrian=0.8x0.7x1.8,cyclist=1.8x0.6x1.7"

    def lift_config(self):
        from seg2track_ros.engine.amodal3d import parse_object_sizes
        from seg2track_ros.engine.geometry3d import LiftConfig

        return LiftConfig(
            depth_scale=self.depth_scale,
            min_range=self.min_range,
            max_range=self.max_range,
            erosion=self.erosion,
            min_valid_points=self.min_valid_points,
            object_sizes=parse_object_sizes(self.object_sizes),
        )

    def motion_config(self):
        from seg2track_ros.engine.motion3d import MotionConfig

        return MotionConfig(
            process_noise=self.process_noise, measurement_noise=self.measurement_noise
        )


@dataclass(frozen=True)
class NodeSettings:
    """tracker_node settings that are not the engine's."""

    image_topic: str = "image"
    image_transport: str = "raw"
    detections_topic: str = "detections"
    input_reliability: str = "best_effort"
    input_depth: int = 5
    mode: str = "realtime"
    sync_slop: float = 0.0
    sync_timeout: float = 0.2
    sync_queue: int = 30
    lockstep_queue_bytes: int = 512 * 2**20
    max_detections: int = 300
    max_image_pixels: int = 16_000_000
    publish_overlay: bool = False
    diagnostics_period: float = 1.0
    autostart: bool = True
    inject_fault_every: int = 0
    # Which segmenter the engine uses, by its name in the entry-point group
    # seg2track_ros.segmenters (engine/registry.py): sam2, detection-masks, or a plugin's.
    segmenter: str = "sam2"
    class_map: str = ""
    expected_image_rate: float = 0.0
    lift3d: Lift3DSettings = field(default_factory=Lift3DSettings)
    # Camera names: one tracker_node serves them all with one model (topics
    # '<camera>/image', ...). [""]: one unnamed camera on the plain topics.
    cameras: list[str] = dataclasses.field(default_factory=lambda: [""])
    # Several cameras: seconds the worker waits, once one camera's frame is ready, for
    # the frames of the cameras seen in the last few ticks, so that one engine call
    # tracks them together.
    camera_gather_window: float = 0.01


CHOICES = {
    "model": MODEL_SIZES,
    "input_reliability": ("best_effort", "reliable"),
    "image_transport": ("raw", "compressed"),
    "mode": ("realtime", "lockstep"),
    "source": ("depth", "points"),
}


def scalar_fields(config: Any) -> dict[str, Any]:
    """A config dataclass's plain fields (not nested configs or dicts) and their values."""
    return {
        f.name: getattr(config, f.name)
        for f in dataclasses.fields(config)
        if not dataclasses.is_dataclass(getattr(config, f.name))
        and not isinstance(getattr(config, f.name), dict)
    }


def default_values(class_ids: Iterable[str] | None = None) -> dict[str, Any]:
    """Every parameter name with its default, for the given per-class ids."""
    defaults = EngineConfig()
    ids = list(defaults.tracker.classes) if class_ids is None else list(class_ids)
    values: dict[str, Any] = dict(scalar_fields(NodeSettings()))
    values.update(scalar_fields(defaults.segmenter))
    values.update({f"tracker.{k}": v for k, v in scalar_fields(defaults.tracker).items()})
    values["tracker.class_ids"] = ids
    values.update({f"lift3d.{k}": v for k, v in scalar_fields(Lift3DSettings()).items()})
    for name, value in scalar_fields(defaults.tracker.default_class).items():
        values[f"tracker.default_class.{name}"] = value
    for class_id in ids:
        base = defaults.tracker.classes.get(class_id, defaults.tracker.default_class)
        for name, value in scalar_fields(base).items():
            values[f"tracker.classes.{class_id}.{name}"] = value
    return values


def config_from_values(value: Callable[[str], Any]) -> tuple[EngineConfig, NodeSettings]:
    """Validated configs from a lookup of parameter values; ParameterError names the
    offending parameter."""
    lift3d = lift3d_from_values(value)
    settings = NodeSettings(
        **{name: value(name) for name in scalar_fields(NodeSettings())}, lift3d=lift3d
    )
    segmenter = SegmenterConfig(**{name: value(name) for name in scalar_fields(SegmenterConfig())})
    scalars = {name: value(f"tracker.{name}") for name in scalar_fields(TrackerConfig())}
    thresholds = scalar_fields(ClassThresholds())
    default_class = ClassThresholds(**{n: value(f"tracker.default_class.{n}") for n in thresholds})
    classes = {
        class_id: ClassThresholds(
            **{n: value(f"tracker.classes.{class_id}.{n}") for n in thresholds}
        )
        for class_id in value("tracker.class_ids")
    }
    tracker = TrackerConfig(default_class=default_class, classes=classes, **scalars)
    for name, choices in CHOICES.items():
        current = (
            getattr(settings, name, None)
            or getattr(segmenter, name, None)
            or getattr(settings.lift3d, name, None)
        )
        if current not in choices:
            raise ParameterError(f"parameter '{name}' must be one of {', '.join(choices)}")
    try:
        segmenter.validate()
    except ConfigError as error:
        raise ParameterError(f"parameter {error}") from error
    try:
        tracker.validate()
    except ConfigError as error:
        raise ParameterError(f"parameter tracker.{error}") from error
    if settings.sync_timeout <= 0:
        raise ParameterError("parameter 'sync_timeout' must be > 0")
    check_camera_names(settings.cameras)
    if settings.lift3d.enabled and len(settings.cameras) > 1:
        raise ParameterError(
            f"parameter 'lift3d.enabled': the 3-D stage serves one camera, and 'cameras'"
            f" names {len(settings.cameras)} ({', '.join(settings.cameras)}); run the 3-D"
            " camera in a node of its own, or set lift3d.enabled false"
        )
    for name in ("image_topic", "detections_topic"):
        topic = getattr(settings, name)
        if settings.cameras == [""] and "{camera}" in topic:
            raise ParameterError(f"parameter '{name}' has '{{camera}}' but 'cameras' names none")
        if settings.cameras != [""] and topic.startswith("/") and "{camera}" not in topic:
            raise ParameterError(
                f"parameter '{name}' is an absolute topic, one for every camera; put"
                " '{camera}' in it (e.g. '/kitti/camera_color_{camera}/image_raw') or use a"
                " relative name (each camera reads '<camera>/<name>')"
            )
    from seg2track_ros.engine.registry import check_segmenter_name

    try:
        check_segmenter_name(settings.segmenter)
    except ConfigError as error:
        raise ParameterError(f"parameter 'segmenter': {error}") from error
    if settings.class_map:
        from seg2track_ros.classmap import ClassMapError, parse_class_map

        try:
            parse_class_map(settings.class_map)
        except ClassMapError as error:
            raise ParameterError(f"parameter 'class_map': {error}") from None
    return EngineConfig(tracker=tracker, segmenter=segmenter), settings


def lift3d_from_values(value: Callable[[str], Any]) -> Lift3DSettings:
    """The ``lift3d.*`` parameters, validated; ParameterError names the parameter."""
    values = {name: value(f"lift3d.{name}") for name in scalar_fields(Lift3DSettings())}
    settings = Lift3DSettings(**values)
    from seg2track_ros.engine.amodal3d import ObjectSizeError, parse_object_sizes

    try:
        parse_object_sizes(settings.object_sizes)
    except ObjectSizeError as error:
        raise ParameterError(f"parameter 'lift3d.object_sizes': {error}") from None
    try:
        settings.lift_config().validate()
        settings.motion_config().validate()
    except ValueError as error:
        raise ParameterError(f"parameter lift3d.{error}") from None
    if settings.static_transform:
        from seg2track_ros.engine.geometry3d import PointCloudError, transform_from_pose

        try:
            transform_from_pose(settings.static_transform.split())
        except PointCloudError as error:
            raise ParameterError(f"parameter 'lift3d.static_transform': {error}") from None
    return settings


def camera_topic(camera: str, topic: str) -> str:
    """Camera `camera`'s topic `topic`: with '{camera}' in it, that replaced by the
    camera's name (an input topic of any shape, e.g.
    '/kitti/camera_color_{camera}/image_raw'); an absolute name as it is (the
    parameters refuse one that every camera would share); else '<camera>/<topic>'
    (node-relative, remappable), or '<topic>' for the unnamed camera ("")."""
    if "{camera}" in topic:
        return topic.replace("{camera}", camera)
    if topic.startswith("/"):
        return topic
    return f"{camera}/{topic}" if camera else topic


def check_camera_names(cameras: list[str]) -> None:
    """ParameterError unless ``cameras`` is [""] (one unnamed camera) or unique names
    that are valid ROS name tokens (letters, digits, underscores; not starting with a
    digit), usable as topic namespaces."""
    import re

    cameras = list(cameras)
    if cameras == [""]:
        return
    if not cameras:
        raise ParameterError(
            "parameter 'cameras' is empty; use [\"\"] for one unnamed camera or name them"
        )
    for name in cameras:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ParameterError(
                f"parameter 'cameras': {name!r} is not a valid camera name (letters, digits"
                ' and underscores, not starting with a digit; "" only as the one camera)'
            )
    if len(set(cameras)) != len(cameras):
        raise ParameterError(f"parameter 'cameras' names a camera twice: {cameras}")


def load_params_file(path: Path, node_name: str = "tracker_node") -> dict[str, Any]:
    """Parameters for `node_name` from a params YAML file, flattened to dotted names.

    Two shapes are accepted, by every command alike:

    - ROS 2's: ``<node>: {ros__parameters: {...}}`` sections. Those that apply are
      ``/**``, ``<node_name>`` and ``/<namespace>/<node_name>``, in file order (later ones
      win), as ROS applies them; a file with sections but none that applies is refused
      (its thresholds would silently not apply).
    - flat: parameter names at the top level (``model: tiny``, ``tracker: {lost_logit:
      2.0}`` or ``tracker.lost_logit: 2.0``), with no ``ros__parameters`` anywhere.

    A mix of the two, or ``ros__parameters`` at the top level, is refused. (tracker_node
    started by hand, ``ros2 run ... --params-file``, reads the ROS shape only; the
    `seg2track` commands hand it the values themselves.)
    """
    import yaml

    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ParameterError(f"cannot read parameters file {path}: {error}") from error
    if document is None:
        return {}
    if not isinstance(document, Mapping):
        raise ParameterError(
            f"{path}: expected a mapping of parameter names to values, or of node names"
            " to ros__parameters"
        )
    if "ros__parameters" in document:
        raise ParameterError(
            f"{path}: ros__parameters must sit under a node name; write '/**:' (every"
            " node) or 'tracker_node:' above it, or drop it and list the parameters flat"
        )
    sections = [k for k, v in document.items() if isinstance(v, Mapping) and "ros__parameters" in v]
    if not sections:
        return _flatten(document)
    plain = [str(k) for k in document if k not in sections]
    if plain:
        raise ParameterError(
            f"{path}: mixes ROS sections ({', '.join(map(str, sections))}) with top-level"
            f" parameters ({', '.join(plain)}); put every parameter under ros__parameters"
        )
    values: dict[str, Any] = {}
    applied = []
    for key in sections:
        if key == "/**" or str(key).split("/")[-1] == node_name:
            applied.append(key)
            parameters = document[key]["ros__parameters"]
            if parameters is None:
                continue
            if not isinstance(parameters, Mapping):
                raise ParameterError(f"{path}: '{key}: ros__parameters' is not a mapping")
            values.update(_flatten(parameters))
    if not applied:
        raise ParameterError(
            f"{path}: no section applies to {node_name} (found {', '.join(map(str, sections))});"
            f" name it '/**' or '{node_name}'"
        )
    return values


def _flatten(tree: Mapping, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def config_from_params_files(
    paths: Iterable[Path] = (), overrides: Mapping[str, Any] | None = None
) -> tuple[EngineConfig, NodeSettings]:
    """Configs from params files and overrides (later wins), exactly as tracker_node
    would build them: unknown names and values of the wrong type are refused."""
    return config_from_values(merged_values(paths, overrides).__getitem__)


def merged_values(
    paths: Iterable[Path] = (), overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Every parameter's value after the params files and overrides (later wins), typed
    as the node types them; unknown names and values of the wrong type are refused."""
    given: dict[str, Any] = {}
    for path in paths:
        given.update(load_params_file(path))
    given.update(overrides or {})
    values = default_values(given.get("tracker.class_ids"))
    unknown = sorted(set(given) - set(values))
    if unknown:
        raise ParameterError(f"unknown parameters: {', '.join(unknown)}")
    for name, value in given.items():
        values[name] = _typed(name, value, values[name])
    return values


def _typed(name: str, value: Any, default: Any) -> Any:
    """ROS parameter typing: the value's type must match the parameter's."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, float)
    elif isinstance(default, list):
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    else:
        ok = isinstance(value, str)
    if not ok:
        raise ParameterError(
            f"parameter '{name}' must be of type {type(default).__name__}, got {value!r}"
        )
    return value


def parse_assignment(text: str) -> tuple[str, Any]:
    """'name=value' from the command line, the value parsed as YAML (true, 0.5, [a, b]);
    'name=' is the empty string (YAML would read null)."""
    import yaml

    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise ParameterError(f"expected name=value, got {text!r}")
    return name.strip(), "" if not raw.strip() else yaml.safe_load(raw)


SHIPPED_CONFIG_PACKAGE = "seg2track_ros"


def resolve_params_file(path: str | Path) -> Path:
    """A params file as given when it exists; otherwise a shipped config by name.

    ``config/kitti.yaml`` (the README's spelling, true in a clone's root) and
    ``kitti.yaml`` resolve to ``<share>/seg2track_ros/config/kitti.yaml`` from the ament
    index, so the shipped configs work from any folder on an installed package. A
    missing file that is not a shipped config raises ParameterError.
    """
    given = Path(path)
    if given.is_file():
        return given
    parts = given.parts
    if len(parts) == 1 or (len(parts) == 2 and parts[0] == "config"):
        shipped = _shipped_config_dir()
        if shipped is not None and (shipped / given.name).is_file():
            return shipped / given.name
    names = ", ".join(sorted(p.name for p in (_shipped_config_dir() or Path()).glob("*.yaml")))
    raise ParameterError(
        f"parameters file {path} not found"
        + (f" (shipped configs, usable by name: {names})" if names else "")
    )


def _shipped_config_dir() -> Path | None:
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        return Path(get_package_share_directory(SHIPPED_CONFIG_PACKAGE)) / "config"
    except (PackageNotFoundError, ValueError):
        return None
