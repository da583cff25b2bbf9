"""The ``seg2track`` command: parses arguments and calls the library; nothing else.

Each subcommand is one ``add_<name>(subparsers)`` function, registered with
``@subcommand``, that builds its parser and sets ``handler`` to a ``run_<name>(args) ->
int`` function. Library code raises typed errors; this is the one place that prints
them (one line on stderr) and turns them into exit status 1. Heavy imports (torch, sam2,
rclpy) belong inside the ``run_`` functions so that ``seg2track --help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import UTC
from pathlib import Path

from seg2track_ros import __version__
from seg2track_ros.argtypes import positive_float, positive_int
from seg2track_ros.datasets.errors import DatasetError
from seg2track_ros.engine import checkpoints
from seg2track_ros.engine.config import ConfigError
from seg2track_ros.engine.types import InvalidInputError
from seg2track_ros.errors import UserFacingError
from seg2track_ros.evaluation.evaluate import EvaluationError
from seg2track_ros.stamps import header_stamp_ns

PROG = "seg2track"
_LOG = logging.getLogger(__name__)

# Errors a user can act on: printed as one line, exit status 1. Add a subcommand's own
# error base here rather than catching it in the subcommand.
USER_ERRORS: tuple[type[Exception], ...] = (
    checkpoints.CheckpointError,
    ConfigError,
    DatasetError,
    EvaluationError,
    FileExistsError,
    InvalidInputError,
    UserFacingError,
)

_SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []


def subcommand(
    add: Callable[[argparse._SubParsersAction], None],
) -> Callable[[argparse._SubParsersAction], None]:
    """Register a function that adds one subcommand's parser (in registration order)."""
    _SUBCOMMANDS.append(add)
    return add


@subcommand
def add_download_checkpoints(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "download-checkpoints",
        help="download official SAM 2.1 checkpoints (sha256-checked, resumable)",
        description=(
            "Download official SAM 2.1 checkpoints from Meta, check their sha256 and store"
            " them where the tracker looks by default. An interrupted download resumes when"
            " the command is run again; a file already present and intact is kept."
        ),
    )
    parser.add_argument(
        "--model",
        required=True,
        choices=[*checkpoints.CHECKPOINTS, "all"],
        help="which model size to download, or all four",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help=(
            "directory to store the files in (default: $SEG2TRACK_CHECKPOINT_DIR, else"
            f" $XDG_CACHE_HOME/seg2track/checkpoints, now {checkpoints.default_checkpoint_dir()})"
        ),
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds to wait for the server when connecting and per read (default: 30)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run_download_checkpoints)


def run_download_checkpoints(args: argparse.Namespace) -> int:
    directory = args.dir if args.dir is not None else checkpoints.default_checkpoint_dir()
    sizes = list(checkpoints.CHECKPOINTS) if args.model == "all" else [args.model]
    for size in sizes:
        path = checkpoints.download_checkpoint(
            size, directory, progress=not args.quiet, timeout=args.timeout
        )
        print(f"{size}: {path}")
    return 0


DET_FORMAT_HELP = (
    "detections file format: trackrcnn, boxes (frame x0 y0 x1 y1 score class_id),"
    " mot_det (MOTChallenge det.txt) or kitti_tracking (KITTI tracking labels/results);"
    " README 'Detection file formats' has an example line of each. Deprecated names:"
    " kitti (= boxes), mot (= mot_det)"
)


def _det_format(name: str) -> str:
    """argparse type of --det-format: the format's name; a deprecated alias warns on
    stderr and gives the format it stands for."""
    from seg2track_ros.datasets import DatasetError, canonical_format

    try:
        fmt, note = canonical_format(name)
    except DatasetError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if note is not None:
        print(f"{PROG}: warning: {note}", file=sys.stderr)
    return fmt


def _add_det_format(parser: argparse.ArgumentParser, default: str) -> None:
    from seg2track_ros.datasets import DETECTION_FORMATS

    parser.add_argument(
        "--det-format",
        type=_det_format,
        choices=DETECTION_FORMATS,
        default=default,
        metavar="{" + ",".join(DETECTION_FORMATS) + "}",
        help=f"{DET_FORMAT_HELP} (default: {default})",
    )


def _add_params_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--params",
        type=Path,
        action="append",
        default=[],
        help="tracker_node parameters YAML (repeatable; later files win), as for ros2 launch;"
        " a shipped config by name (kitti.yaml, config/kitti.yaml) resolves from the"
        " installed share folder when no such file is here",
    )
    parser.add_argument(
        "--set",
        dest="assignments",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override one parameter, e.g. --set model=tiny --set checkpoint=random",
    )


def _overrides(args: argparse.Namespace) -> dict:
    from seg2track_ros.params import parse_assignment, resolve_params_file

    # Resolved here, where every command that takes --params passes, so run and replay
    # (and the node replay starts) read the same files.
    args.params = [resolve_params_file(path) for path in args.params]
    return dict(parse_assignment(text) for text in args.assignments)


def _write_run_record(
    args: argparse.Namespace, overrides: dict, inputs: dict, unmapped_tracks: dict
) -> None:
    """``<results>.run.yaml``: the command and parameters behind the results (what
    `seg2track evaluate` puts in report.md)."""
    from seg2track_ros.params import default_values, merged_values
    from seg2track_ros.provenance import write_record

    values = merged_values(args.params, overrides)
    inputs = {**inputs, "params": ", ".join(str(p) for p in args.params) or None}
    path = write_record(
        args.results,
        getattr(args, "command_line", PROG),
        values,
        default_values(values["tracker.class_ids"]),
        inputs,
        unmapped_tracks,
    )
    print(f"recorded the command and parameters in {path}")


def _add_results_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", type=Path, required=True, help="results file to write")
    parser.add_argument(
        "--format",
        choices=["kitti_mots", "mots20"],
        default="kitti_mots",
        help="results file format (default: kitti_mots)",
    )
    parser.add_argument(
        "--states",
        default="confirmed,occluded,lost",
        help="track states written as results (default: confirmed,occluded,lost)",
    )
    parser.add_argument(
        "--class-map",
        default="coco",
        metavar="MAP",
        help="detector class -> benchmark class for the results: 'coco' (default: person/0"
        " -> pedestrian, car/2 -> car), 'none', items like 'coco,truck=car', or a YAML file"
        " (person: pedestrian); tracks of unmapped classes are left out and counted",
    )


@subcommand
def add_kitti_to_bag(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "kitti-to-bag",
        help="image folder + detections file -> rosbag2 (images and Detection2DArray)",
        description=(
            "Write a rosbag2 (metadata v9) with one bgr8 sensor_msgs/Image per image on"
            " /kitti/camera_color_left/image_raw and its detections as"
            " vision_msgs/Detection2DArray on /detections (same header). Type hashes equal a"
            " real ROS 2 Jazzy system's, so `ros2 bag play` accepts the bag."
        ),
    )
    parser.add_argument("--images", type=Path, required=True, help="folder of frames, in order")
    parser.add_argument("--detections", type=Path, required=True, help="detections file")
    _add_det_format(parser, "trackrcnn")
    parser.add_argument("--out", type=Path, required=True, help="bag folder to create")
    parser.add_argument("--storage", choices=["mcap", "sqlite3"], default="mcap")
    parser.add_argument(
        "--timestamps",
        type=Path,
        help="KITTI timestamps.txt (one 'YYYY-MM-DD hh:mm:ss.fffffffff' per frame);"
        " default: 10 Hz from 1.0 s",
    )
    parser.add_argument("--image-topic", default="/kitti/camera_color_left/image_raw")
    parser.add_argument("--frame-id", default="camera_color_left")
    parser.add_argument(
        "--images-right",
        type=Path,
        help="KITTI's right colour camera (image_03) too, for one node serving both"
        " (config/kitti_stereo.yaml): the left camera on /kitti/camera_color_left/image_raw"
        " and /detections/left, the right on /kitti/camera_color_right/image_raw and"
        " /detections/right (frame ids camera_color_left/right); needs --detections-right",
    )
    parser.add_argument("--detections-right", type=Path, help="detections file of --images-right")
    parser.add_argument(
        "--compressed",
        choices=["jpeg", "png"],
        help="write sensor_msgs/CompressedImage on <image-topic>/compressed (as a camera's"
        " image_transport records them; jpeg at quality 95) instead of raw bgr8 Images",
    )
    parser.add_argument(
        "--calib",
        type=Path,
        help="KITTI tracking calib file (calib/NNNN.txt): also write a CameraInfo per frame"
        " on /kitti/camera_color_left/camera_info (K and P of image_02) and the"
        " camera-from-LiDAR transform on /tf_static (with --velodyne)",
    )
    parser.add_argument(
        "--velodyne",
        type=Path,
        help="KITTI Velodyne scans (velodyne/NNNN): a PointCloud2 per frame on"
        " /kitti/velo/pointcloud (frame velo_link, the image's stamp; with --calib)",
    )
    parser.set_defaults(handler=run_kitti_to_bag)


def run_kitti_to_bag(args: argparse.Namespace) -> int:
    from seg2track_ros.bags.writer import BagFrame, default_stamp, write_bag
    from seg2track_ros.datasets import read_detections
    from seg2track_ros.pipeline import check_image_sizes, list_images, load_rgb

    lidar, scans = _kitti_lidar(args)  # refused before anything is read
    images = list_images(args.images)
    detections = read_detections(args.detections, args.det_format)
    _warn_detections_past_images(detections, len(images), args.detections)
    check_image_sizes(images, detections.image_size, str(args.detections))
    stamps = (
        _kitti_timestamps(args.timestamps, len(images))
        if args.timestamps
        else [default_stamp(i) for i in range(len(images))]
    )

    right = right_images = right_detections = None
    topics = {"image_topic": args.image_topic, "frame_id": args.frame_id}
    if args.images_right is not None or args.detections_right is not None:
        from seg2track_ros.bags.writer import STEREO_LEFT, STEREO_RIGHT

        if args.images_right is None or args.detections_right is None:
            raise UserFacingError("--images-right and --detections-right go together")
        right_images = list_images(args.images_right)
        if len(right_images) != len(images):
            raise UserFacingError(
                f"{len(right_images)} right images in {args.images_right} but"
                f" {len(images)} left images in {args.images}: a stereo bag pairs them"
            )
        right_detections = read_detections(args.detections_right, args.det_format)
        _warn_detections_past_images(right_detections, len(right_images), args.detections_right)
        check_image_sizes(right_images, right_detections.image_size, str(args.detections_right))
        right = STEREO_RIGHT
        topics = {
            "image_topic": STEREO_LEFT.image_topic,
            "detections_topic": STEREO_LEFT.detections_topic,
            "frame_id": STEREO_LEFT.frame_id,
        }

    def frames():
        from tqdm import tqdm

        from seg2track_ros.datasets.tracks3d import read_velodyne_points

        for index in tqdm(range(len(images)), unit="frame", desc="kitti-to-bag", leave=False):
            bgr = load_rgb(images[index])[..., ::-1]
            scan = scans.get(index) if scans else None
            points = read_velodyne_points(scan) if scan is not None else None
            extra = {}
            if right is not None:
                extra = {
                    "right_bgr": load_rgb(right_images[index])[..., ::-1],
                    "right_detections": right_detections.detections_at(index),
                }
            yield BagFrame(
                stamps[index], bgr, detections.detections_at(index), points=points, **extra
            )

    summary = write_bag(
        args.out,
        frames(),
        storage=args.storage,
        compressed=args.compressed,
        lidar=lidar,
        right=right,
        **topics,
    )
    print(f"wrote {summary.path}: {summary.frames} frames, {summary.detections} detections")
    if lidar is not None:
        from seg2track_ros.bags.writer import pose_from_transform

        pose = " ".join(f"{v:.6g}" for v in pose_from_transform(lidar.camera_from_lidar))
        missing = len(images) - sum(1 for i in range(len(images)) if i in scans)
        print(
            f"with CameraInfo, {len(images) - missing} PointCloud2 scans"
            f"{f' ({missing} frames without a scan)' if missing else ''} and /tf_static"
            f" {args.frame_id} <- velo_link; without tf2 give tracker_node"
            f' lift3d.static_transform:="{pose}"'
        )
    return 0


def _kitti_lidar(args: argparse.Namespace):
    """kitti-to-bag's LidarBag and scans by frame from --calib/--velodyne, or (None, {})."""
    if args.calib is None and args.velodyne is None:
        return None, {}
    if args.calib is None or args.velodyne is None:
        raise UserFacingError("--calib and --velodyne go together")
    import numpy as np

    from seg2track_ros.bags.writer import LidarBag
    from seg2track_ros.datasets.kitti_calib import read_kitti_calibration
    from seg2track_ros.lift3d_run import velodyne_scans

    calib = read_kitti_calibration(args.calib)
    camera = calib.camera(1, 1)
    k = np.array([[camera.fx, 0, camera.cx], [0, camera.fy, camera.cy], [0, 0, 1]])
    return LidarBag(k, calib.p2, calib.camera_from_velodyne), velodyne_scans(args.velodyne)


@subcommand
def add_mots20_to_bag(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "mots20-to-bag",
        help="MOTS20 / MOTChallenge sequence folder -> rosbag2",
        description=(
            "The MOTS20 equivalent of kitti-to-bag: reads <seq>/seqinfo.ini for the image"
            " folder and frame rate; detections default to <seq>/det/det.txt (MOT format)."
            " Images go to /mots20/image_raw (frame_id 'camera'), detections to /detections."
        ),
    )
    parser.add_argument("--seq", type=Path, required=True, help="sequence folder")
    parser.add_argument("--detections", type=Path, help="detections (default: <seq>/det/det.txt)")
    _add_det_format(parser, "mot_det")
    parser.add_argument("--out", type=Path, required=True, help="bag folder to create")
    parser.add_argument("--storage", choices=["mcap", "sqlite3"], default="mcap")
    parser.set_defaults(handler=run_mots20_to_bag)


def run_mots20_to_bag(args: argparse.Namespace) -> int:
    from seg2track_ros.bags.writer import BagFrame, write_bag
    from seg2track_ros.datasets import read_detections, read_seqinfo
    from seg2track_ros.pipeline import check_image_sizes, list_images, load_rgb

    info = read_seqinfo(args.seq / "seqinfo.ini")
    images = list_images(args.seq / info.im_dir)[: info.seq_length]
    det_path = args.detections or args.seq / "det" / "det.txt"
    detections = read_detections(det_path, args.det_format)
    _warn_detections_past_images(detections, len(images), det_path)
    check_image_sizes(images, detections.image_size, str(det_path))
    frames = (
        BagFrame(
            1_000_000_000 + round(i * 1e9 / info.frame_rate),  # no accumulated rounding
            load_rgb(path)[..., ::-1],
            detections.detections_at(i),
        )
        for i, path in enumerate(images)
    )
    summary = write_bag(
        args.out, frames, storage=args.storage, image_topic="/mots20/image_raw", frame_id="camera"
    )
    print(f"wrote {summary.path}: {summary.frames} frames, {summary.detections} detections")
    return 0


def _warn_detections_past_images(detections, image_count: int, path: Path) -> None:
    """Detections on frames beyond the last image are never used: say so."""
    past = [frame for frame in detections.frames if frame >= image_count]
    if past:
        lines = sum(detections.count_at(frame) for frame in past)
        _LOG.warning(
            f"{path}: {lines} detections on {len(past)} frames past the last image"
            f" (frames {past[0]}..{past[-1]}, but there are {image_count} images,"
            f" 0..{image_count - 1}); they are left out. Wrong image folder or detections file?"
        )


def _kitti_timestamps(path: Path, count: int) -> list[int]:
    from datetime import datetime

    from seg2track_ros.datasets import DatasetFileError, FormatError

    try:
        text_lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetFileError(f"cannot read the timestamps {path}: {error}") from None
    stamps = []
    for number, line in enumerate(text_lines, start=1):
        text = line.strip()
        if not text:
            continue
        try:
            day, _, clock = text.partition(" ")
            whole, _, fraction = clock.partition(".")
            parsed = datetime.strptime(f"{day} {whole}", "%Y-%m-%d %H:%M:%S")
            seconds = int(parsed.replace(tzinfo=UTC).timestamp())
            nanos = int((fraction + "000000000")[:9]) if fraction else 0
        except ValueError as error:
            raise FormatError(path, number, f"not a KITTI timestamp: {error}") from None
        stamps.append(seconds * 1_000_000_000 + nanos)
    if len(stamps) < count:
        raise FormatError(path, len(stamps), f"{len(stamps)} timestamps for {count} images")
    return stamps[:count]


@subcommand
def add_run(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="track an image folder + detections without ROS, write a results file",
        description=(
            "Run the tracker directly (no ROS) over an image folder and a detections file."
            " With the same parameters it writes the same results as `seg2track replay"
            " --lockstep` through tracker_node."
        ),
    )
    frames = parser.add_mutually_exclusive_group()
    frames.add_argument(
        "--images",
        type=Path,
        help="folder of frames, or a bag's images (raw or compressed; optional with"
        " --segmenter detection-masks: sizes come from the detections)",
    )
    frames.add_argument(
        "--video",
        type=Path,
        help="video file (read by OpenCV): frame k of the video is frame k (from 0) of the"
        " detections",
    )
    parser.add_argument("--detections", type=Path, required=True, help="detections file")
    _add_det_format(parser, "trackrcnn")
    parser.add_argument(
        "--segmenter",
        metavar="NAME",
        help="sam2, detection-masks (the detector's own masks, no model) or another"
        " installed one (entry-point group seg2track_ros.segmenters); default: the"
        " parameter 'segmenter' from --params / --set, else sam2",
    )
    parser.add_argument(
        "--frames", type=positive_int, metavar="N", help="track only the first N frames"
    )
    _add_params_options(parser)
    _add_results_options(parser)
    lift = parser.add_argument_group(
        "3-D tracks (KITTI LiDAR; all three together; lift3d.* parameters from --params/--set)"
    )
    lift.add_argument("--calib", type=Path, help="KITTI tracking calib file (calib/NNNN.txt)")
    lift.add_argument(
        "--velodyne", type=Path, help="KITTI Velodyne scans of the sequence (velodyne/NNNN)"
    )
    lift.add_argument(
        "--results-3d",
        type=Path,
        help="3-D track file to write (one line per track and frame; see evaluate-3d)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run_run)


def run_run(args: argparse.Namespace) -> int:
    from seg2track_ros.classmap import parse_class_map
    from seg2track_ros.datasets import read_detections
    from seg2track_ros.frames import open_frames
    from seg2track_ros.params import config_from_params_files
    from seg2track_ros.pipeline import run_sequence
    from seg2track_ros.results import parse_states, prepare_results_path

    overrides = _overrides(args)
    if args.segmenter is not None:
        overrides["segmenter"] = args.segmenter
    config, settings = config_from_params_files(args.params, overrides)
    states = parse_states(args.states)
    class_map = parse_class_map(args.class_map)
    prepare_results_path(args.results)
    lift3d = _lift3d_recorder(args, settings)
    try:
        summary = run_sequence(
            config,
            read_detections(args.detections, args.det_format),
            args.results,
            images=open_frames(args.images, args.video) if args.images or args.video else None,
            segmenter=settings.segmenter,
            fmt=args.format,
            states=states,
            frames=args.frames,
            progress=not args.quiet,
            class_map=class_map,
            # tracker_node's class_map parameter, applied the same way so run == replay
            input_class_map=parse_class_map(settings.class_map) if settings.class_map else None,
            lift3d=lift3d,
        )
    finally:
        if lift3d is not None:
            lift3d.close()
    print(
        f"tracked {summary.frames} frames ({summary.mean_frame_ms:.0f} ms/frame);"
        f" wrote {summary.results.lines} lines to {args.results}"
        f"{_unmapped_note(summary.results)}"
    )
    if lift3d is not None:
        missing = (
            f"; {lift3d.frames_without_scan} frame(s) had no scan"
            if lift3d.frames_without_scan
            else ""
        )
        print(
            f"wrote {lift3d.lines} track lines ({lift3d.with_3d} with a 3-D estimate) to"
            f" {args.results_3d}{missing}"
        )
    _write_run_record(
        args,
        overrides,
        {
            "images": args.images,
            "video": args.video,
            "detections": args.detections,
            "det_format": args.det_format,
            "segmenter": settings.segmenter,
            "frames": summary.frames,
        },
        summary.results.unmapped_tracks,
    )
    return 0


def _lift3d_recorder(args: argparse.Namespace, settings):
    """The 3-D recorder of `run` (--calib, --velodyne, --results-3d), or None."""
    given = [args.calib, args.velodyne, args.results_3d]
    if not any(given):
        return None
    if not all(given):
        raise UserFacingError("--calib, --velodyne and --results-3d go together")
    from seg2track_ros.datasets.kitti_calib import read_kitti_calibration
    from seg2track_ros.lift3d_run import Lift3DRecorder, velodyne_scans

    return Lift3DRecorder(
        args.results_3d,
        read_kitti_calibration(args.calib),
        velodyne_scans(args.velodyne),
        settings.lift3d.lift_config(),
        settings.lift3d.motion_config(),
    )


def _unmapped_note(written) -> str:
    from seg2track_ros.classmap import describe_unmapped

    note = describe_unmapped(written.unmapped_tracks)
    return f"; {note}" if note else ""


@subcommand
def add_replay(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="play a bag through tracker_node over DDS and record its tracks",
        description=(
            "Start tracker_node, publish the bag's images and detections to it over DDS and"
            " write its `tracks` to a results file (and optionally to a bag). --lockstep"
            " sends the next frame only after the node answered the current one."
        ),
    )
    parser.add_argument("bag", type=Path, help="bag written by `seg2track kitti-to-bag`")
    parser.add_argument("--lockstep", action="store_true", help="every frame, in order")
    parser.add_argument("--rate", type=positive_float, default=1.0, help="playback rate otherwise")
    parser.add_argument("--out-bag", type=Path, help="also record `tracks` to this bag")
    parser.add_argument("--image-topic", help="image topic when the bag has several")
    parser.add_argument(
        "--detections-topic", help="detections topic when the bag has several (a stereo bag)"
    )
    parser.add_argument(
        "--node-log",
        type=Path,
        help="keep tracker_node's output in this file (default: a temporary file, whose"
        " path is printed, deleted after a successful replay and kept after a failure)",
    )
    _add_params_options(parser)
    _add_results_options(parser)
    parser.add_argument(
        "--results-3d",
        type=Path,
        help="also write the node's 3-D tracks (a bag with CameraInfo and PointCloud2 from"
        " `kitti-to-bag --calib --velodyne`): turns lift3d on with source points and, unless"
        " --set gives it, the bag's /tf_static as lift3d.static_transform; the file is"
        " `evaluate-3d`'s input",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run_replay)


def run_replay(args: argparse.Namespace) -> int:
    from seg2track_ros.bags.replay import ReplayOptions
    from seg2track_ros.classmap import parse_class_map
    from seg2track_ros.params import config_from_params_files
    from seg2track_ros.results import parse_states, prepare_results_path

    # Everything that can be refused is refused before tracker_node starts.
    overrides = _overrides(args)
    if args.results_3d is not None:
        overrides = {**_replay_3d_overrides(args.bag), **overrides}
    _, settings = config_from_params_files(args.params, overrides)
    states = parse_states(args.states)
    class_map = parse_class_map(args.class_map)
    cameras = _replay_cameras(args, settings) if settings.cameras != [""] else None
    results = (
        {"": args.results}
        if cameras is None
        else {c.name: camera_results_path(args.results, c.name) for c in cameras}
    )
    for path in results.values():
        prepare_results_path(path)
    if args.out_bag is not None and args.out_bag.exists():
        raise UserFacingError(
            f"--out-bag {args.out_bag} already exists; remove it or choose another path"
        )
    options = ReplayOptions(
        lockstep=args.lockstep,
        rate=args.rate,
        params_files=tuple(args.params),
        overrides=overrides,
        progress=not args.quiet,
        node_log=args.node_log,
        on_node_log=lambda path: print(f"tracker_node's log: {path}", file=sys.stderr),
    )
    if cameras is None:
        summary, written = _replay_one_camera(args, options, states, class_map)
    else:
        summary, written = _replay_several_cameras(
            args, options, cameras, results, states, class_map
        )
    for line in summary.node_warnings:
        print(f"tracker_node: {line}", file=sys.stderr)
    kept = f"; its log: {summary.node_log_path}" if summary.node_log_path else ""
    print(f"replayed {summary.frames_sent} frames, {summary.tracks_received} answered{kept}")
    for camera, path in results.items():
        sent, answered = summary.per_camera[camera]
        name = f"camera {camera}: " if camera else ""
        print(
            f"{name}wrote {written[camera].lines} lines to {path}{_unmapped_note(written[camera])}"
        )
        inputs = {
            "bag": args.bag,
            "lockstep": args.lockstep,
            "rate": None if args.lockstep else args.rate,
            "frames_sent": sent,
            "frames_answered": answered,
        }
        if camera:
            inputs["camera"] = camera
        _write_run_record(
            argparse.Namespace(**{**vars(args), "results": path}),
            overrides,
            inputs,
            written[camera].unmapped_tracks,
        )
    return 0


def camera_results_path(results: Path, camera: str) -> Path:
    """Camera `camera`'s results file of a several-camera replay: `results` with
    '{camera}' replaced by the camera's name, or else `<folder>/<camera>/<name>` (one
    folder per camera, as `seg2track evaluate` reads a tracker's results)."""
    text = str(results)
    if "{camera}" in text:
        return Path(text.replace("{camera}", camera))
    return results.parent / camera / results.name


def _replay_cameras(args: argparse.Namespace, settings) -> list:
    """The cameras of a several-camera replay and their topics in the bag: the
    parameters' image_topic and detections_topic with '{camera}' replaced by each
    camera's name (as config/kitti_stereo.yaml and `kitti-to-bag --images-right` have
    them)."""
    from seg2track_ros.bags.replay import ReplayCamera
    from seg2track_ros.params import camera_topic

    for option in ("image_topic", "detections_topic", "results_3d"):
        if getattr(args, option) is not None:
            raise UserFacingError(
                f"--{option.replace('_', '-')} is for a replay of one camera; the parameters"
                f" name cameras {', '.join(settings.cameras)}"
            )
    for name in ("image_topic", "detections_topic"):
        topic = getattr(settings, name)
        if "{camera}" not in topic:
            raise UserFacingError(
                f"replay with several cameras ({', '.join(settings.cameras)}) finds each"
                f" camera's messages in the bag on the parameter {name} with '{{camera}}'"
                f" replaced by the camera's name; {name} is '{topic}' (e.g. set it as"
                " config/kitti_stereo.yaml does: '/kitti/camera_color_{camera}/image_raw',"
                " '/detections/{camera}')"
            )
    return [
        ReplayCamera(
            name,
            camera_topic(name, settings.image_topic),
            camera_topic(name, settings.detections_topic),
        )
        for name in settings.cameras
    ]


def _replay_one_camera(args, options, states, class_map) -> tuple:
    from seg2track_ros.bags.replay import replay_bag
    from seg2track_ros.results import ResultsRecorder
    from seg2track_ros.ros.results_writer import rows_from_msg

    tracks_bag = _TracksBag(args.out_bag) if args.out_bag else None
    boxes: dict[int, list] = {}  # frame -> (track id, class, xyxy) of its tracks
    states_3d: dict[int, dict] = {}  # frame -> track id -> Track3D
    with ResultsRecorder(args.results, args.format, states, class_map) as recorder:

        def on_tracks(frame, message, raw):
            recorder.add(frame, rows_from_msg(message))
            if tracks_bag is not None:
                tracks_bag.write(message, raw)
            if args.results_3d is not None:
                boxes[frame] = _track_boxes(message)

        def on_tracks_3d(frame, message):
            states_3d[frame] = {t.track_id: t for t in message.tracks}

        try:
            summary = replay_bag(
                args.bag,
                options,
                on_tracks,
                image_topic=args.image_topic,
                on_tracks_3d=on_tracks_3d if args.results_3d is not None else None,
                detections_topic=args.detections_topic,
            )
        finally:
            if tracks_bag is not None:
                tracks_bag.close()
        written = recorder.close()
    if args.results_3d is not None:
        lines, with_3d = _write_replay_3d(args.results_3d, boxes, states_3d)
        print(f"wrote {lines} track lines ({with_3d} with a 3-D estimate) to {args.results_3d}")
    return summary, {"": written}


def _replay_several_cameras(args, options, cameras, results, states, class_map) -> tuple:
    from contextlib import ExitStack

    from seg2track_ros.bags.replay import replay_cameras
    from seg2track_ros.results import ResultsRecorder
    from seg2track_ros.ros.results_writer import rows_from_msg

    tracks_bag = _TracksBag(args.out_bag) if args.out_bag else None
    with ExitStack() as stack:
        recorders = {
            name: stack.enter_context(ResultsRecorder(path, args.format, states, class_map))
            for name, path in results.items()
        }

        def on_tracks(camera, frame, message, raw):
            recorders[camera].add(frame, rows_from_msg(message))
            if tracks_bag is not None:
                tracks_bag.write(message, raw, f"/{camera}/tracks")

        try:
            summary = replay_cameras(args.bag, options, cameras, on_tracks)
        finally:
            if tracks_bag is not None:
                tracks_bag.close()
        written = {name: recorder.close() for name, recorder in recorders.items()}
    return summary, written


def _replay_3d_overrides(bag: Path) -> dict:
    """lift3d parameters for `replay --results-3d`: on, from points, with the bag's
    static camera-from-LiDAR transform."""
    from seg2track_ros.bags.reader import read_static_transform

    overrides = {"lift3d.enabled": True, "lift3d.source": "points"}
    static = read_static_transform(bag)
    if static is not None:
        overrides["lift3d.static_transform"] = " ".join(f"{v:.9g}" for v in static[2])
    return overrides


def _track_boxes(message) -> list:
    out = []
    for obj in message.objects:
        box = obj.bbox
        if box.size_x <= 0 or box.size_y <= 0:
            continue  # an empty mask (LOST): no box, no 3-D
        cx, cy = box.center.position.x, box.center.position.y
        xyxy = (cx - box.size_x / 2, cy - box.size_y / 2, cx + box.size_x / 2, cy + box.size_y / 2)
        out.append((obj.track_id, obj.class_id, xyxy))
    return out


def _write_replay_3d(path: Path, boxes: dict, states_3d: dict) -> tuple[int, int]:
    import numpy as np

    from seg2track_ros.datasets.tracks3d import Track3DRow, write_tracks3d
    from seg2track_ros.errors import make_parent_folder

    nan3 = np.full(3, np.nan)
    rows = []
    for frame in sorted(boxes):
        frame_states = states_3d.get(frame, {})
        for track_id, class_id, xyxy in boxes[frame]:
            state = frame_states.get(track_id)
            if state is None:
                rows.append(Track3DRow(frame, track_id, class_id, xyxy, nan3, nan3, nan3, 0))
                continue
            p, v, z = state.position, state.velocity, state.size
            rows.append(
                Track3DRow(
                    frame,
                    track_id,
                    class_id,
                    xyxy,
                    np.array([p.x, p.y, p.z]),
                    np.array([v.x, v.y, v.z]),
                    np.array([z.x, z.y, z.z]),
                    int(state.valid_points),
                )
            )
    make_parent_folder(Path(path), "3-D results")
    write_tracks3d(path, rows)
    return len(rows), sum(r.has_3d for r in rows)


class _TracksBag:
    """Records tracker_node's `tracks` (raw CDR) to a bag, with our message definitions:
    on /tracks, or one topic per camera (/<camera>/tracks)."""

    def __init__(self, path: Path) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        self._writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
        try:
            self._writer.open()
        except Exception as error:  # rosbags' WriterError, or an OSError underneath
            raise UserFacingError(f"cannot write the bag {path}: {error}") from None
        self._connections: dict[str, object] = {}

    def write(self, message, raw: bytes, topic: str = "/tracks") -> None:
        from seg2track_ros.bags.typestore import TRACKS, typestore

        if topic not in self._connections:
            self._connections[topic] = self._writer.add_connection(
                topic, TRACKS, typestore=typestore()
            )
        stamp = header_stamp_ns(message.header)
        self._writer.write(self._connections[topic], stamp, raw)

    def close(self) -> None:
        self._writer.close()


@subcommand
def add_render(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "render",
        help="MP4 of the frames with masks, ids and classes drawn",
        description="Draw each track's mask, id and class on its frames and write an MP4.",
    )
    frames = parser.add_mutually_exclusive_group(required=True)
    frames.add_argument(
        "--images", type=Path, help="folder of frames, or a bag's images (raw or compressed)"
    )
    frames.add_argument("--video", type=Path, help="video file (read by OpenCV)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--results", type=Path, help="results file (KITTI MOTS / MOTS20)")
    source.add_argument("--bag", type=Path, help="bag with `tracks` (replay --out-bag)")
    parser.add_argument(
        "--source-bag",
        type=Path,
        help="with --bag: the bag that was replayed; its image stamps number the frames, and"
        " tracks pair with images by stamp (default: kitti-to-bag's clock, frame i at"
        " 1 s + i/10 s)",
    )
    parser.add_argument("--format", choices=["kitti_mots", "mots20"], default="kitti_mots")
    parser.add_argument(
        "--fps",
        type=positive_float,
        default=None,
        help="frames per second (default: the --video's own rate, else 10 as KITTI)",
    )
    parser.add_argument(
        "--codec",
        choices=["auto", "avc1", "mp4v"],
        default="auto",
        help="auto: H.264 (avc1, plays in browsers and players) where this OpenCV build can"
        " write it, else mp4v (MPEG-4 Part 2) with a note; or force one",
    )
    parser.add_argument("--out", type=Path, required=True, help="MP4 file to write")
    parser.set_defaults(handler=run_render)


def run_render(args: argparse.Namespace) -> int:
    from seg2track_ros.frames import VideoFile, open_frames
    from seg2track_ros.render import render_video, tracks_from_bag, tracks_from_results

    source = open_frames(args.images, args.video)
    unanswered = ""
    if args.bag:
        stamps = None
        if args.source_bag:
            from seg2track_ros.bags.reader import read_image_stamps

            stamps = read_image_stamps(args.source_bag)
            if len(stamps) != len(source):
                raise UserFacingError(
                    f"--source-bag {args.source_bag} has {len(stamps)} images but"
                    f" the {source.description} holds {len(source)}; give the bag made from"
                    " these images"
                )
        from_bag = tracks_from_bag(args.bag, stamps, len(source))
        tracks = from_bag.frames
        if from_bag.unanswered:
            unanswered = (
                f"; {len(from_bag.unanswered)} frames had no tracks message and are drawn"
                " without masks"
            )
    else:
        tracks = tracks_from_results(args.results, args.format)
    fps = args.fps
    if fps is None:
        fps = source.fps if isinstance(source, VideoFile) and source.fps > 0 else 10.0
    written = render_video(source, tracks, args.out, fps, codec=args.codec)
    print(f"wrote {args.out} ({written.frames} frames, {written.codec}{unanswered})")
    if written.note:
        print(f"{PROG}: note: {written.note}", file=sys.stderr)
    return 0


@subcommand
def add_evaluate(subparsers: argparse._SubParsersAction) -> None:
    from seg2track_ros.evaluation import command_evaluate

    command_evaluate.add_parser(subparsers)


@subcommand
def add_evaluate_3d(subparsers: argparse._SubParsersAction) -> None:
    from seg2track_ros.evaluation import evaluate3d

    evaluate3d.add_parser(subparsers)


@subcommand
def add_demo(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="the whole path on a bundled sequence: bag, lockstep replay, evaluation, video",
        description=(
            "Draw a 60-frame KITTI-sized sequence with ground truth, simulate detections,"
            " write a bag, replay it in lockstep through tracker_node (SAM 2.1 tiny; random"
            " weights when no checkpoint is installed), track the same detections with the"
            " detection-masks segmenter, evaluate both with trackeval and render a video."
        ),
    )
    parser.add_argument("--out", type=Path, default=Path("demo_output"), help="output folder")
    parser.add_argument("--frames", type=positive_int, default=60, help="sequence length")
    parser.set_defaults(handler=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from seg2track_ros.demo import run_demo as demo

    demo(args.out, frames=args.frames)
    return 0


@subcommand
def add_bench(subparsers: argparse._SubParsersAction) -> None:
    from seg2track_ros.bench import command

    command.add_parser(subparsers)


@subcommand
def add_stress(subparsers: argparse._SubParsersAction) -> None:
    from seg2track_ros.stress import command

    command.add_parser(subparsers)


@subcommand
def add_simulate_detections(subparsers: argparse._SubParsersAction) -> None:
    from seg2track_ros.datasets import command_simulate

    command_simulate.add_parser(subparsers)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Seg2Track: SAM 2 based multi-object tracking and segmentation tools.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="on an error, show the Python traceback instead of a one-line message",
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for add in _SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (argparse exits 2 on a usage error).

    Every error ends in one line on stderr and exit status 1: a typed error (USER_ERRORS)
    with its own message, anything else as an internal error naming its type. With
    ``--debug`` errors propagate, traceback and all."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    from seg2track_ros.provenance import command_line

    args.command_line = command_line(argv, PROG)
    _log_to_stderr()
    if args.debug:
        return args.handler(args)
    try:
        return args.handler(args)
    except USER_ERRORS as exc:
        _print_error(" ".join(str(exc).split()) or type(exc).__name__)
        details = getattr(exc, "details", None)
        if details:
            print(details.rstrip(), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug or a case without a typed error yet: still one line
        message = " ".join(str(exc).split())
        _print_error(
            f"internal error ({type(exc).__name__}{': ' + message if message else ''});"
            f" run `{PROG} --debug ...` for the traceback and report it"
        )
        return 1


class _StderrHandler(logging.Handler):
    """The library's warnings as `seg2track: warning: ...` on the current stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"{PROG}: {record.levelname.lower()}: {record.getMessage()}", file=sys.stderr)


def _log_to_stderr() -> None:
    logger = logging.getLogger("seg2track_ros")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler(logging.WARNING)
        logger.addHandler(handler)


def _print_error(message: str) -> None:
    # One line, whatever the message holds, so scripts and logs stay readable.
    print(f"{PROG}: error: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
