"""The rosbags type store for our bags: ROS 2 Jazzy's standard types plus vision_msgs and
seg2track_msgs, registered from their installed .msg files.

The .msg files are found through the ament index, so the definitions are whatever this
system builds against: the real vision_msgs on a ROS 2 install, or the fallback (same
fields, same type hashes) in the venv. Bags written with this store therefore carry
definitions and RIHS01 hashes equal to a real Jazzy system's, which `ros2 bag play` needs.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from seg2track_ros.errors import UserFacingError

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
IMAGE_TYPES = (IMAGE, COMPRESSED_IMAGE)
DETECTIONS = "vision_msgs/msg/Detection2DArray"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
POINTS = "sensor_msgs/msg/PointCloud2"
TF = "tf2_msgs/msg/TFMessage"
TRACKS = "seg2track_msgs/msg/TrackedObjectArray"

# Registration order matters: a type's dependencies first.
_PACKAGES = {
    "vision_msgs": [
        "Point2D",
        "Pose2D",
        "BoundingBox2D",
        "ObjectHypothesis",
        "ObjectHypothesisWithPose",
        "Detection2D",
        "Detection2DArray",
    ],
    "seg2track_msgs": ["RLEMask", "TrackedObject", "TrackedObjectArray"],
}


class MissingInterfaceError(UserFacingError):
    """A message package's .msg files are not installed where the ament index points."""


def _msg_dir(package: str) -> Path:
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        return Path(get_package_share_directory(package)) / "msg"
    except PackageNotFoundError as error:
        raise MissingInterfaceError(
            f"the ROS package '{package}' is not in the ament index (AMENT_PREFIX_PATH);"
            " source env.sh (venv) or your workspace's install/setup.bash"
        ) from error


@cache
def typestore() -> Typestore:
    """Jazzy's standard types + vision_msgs + seg2track_msgs (built once per process)."""
    store = get_typestore(Stores.ROS2_JAZZY)
    for package, messages in _PACKAGES.items():
        folder = _msg_dir(package)
        for message in messages:
            path = folder / f"{message}.msg"
            if not path.is_file():
                raise MissingInterfaceError(f"{path} not found (is '{package}' built?)")
            store.register(get_types_from_msg(path.read_text(), f"{package}/msg/{message}"))
    return store
