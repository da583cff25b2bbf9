"""Finding this package's installed executables the way `ros2 run` does.

colcon installs `tracker_node` (and the other console scripts) to
``<prefix>/lib/seg2track_ros/``, a folder that is not on ``PATH``: `ros2 run` finds it
through the ament index. So does ``find_executable``, which every caller that starts
`tracker_node` uses (`seg2track replay`, `seg2track demo`, the latency benchmark):

1. the package's prefix from the ament index: ``ament_index_python.get_package_prefix``
   where that module is importable, otherwise the same lookup done here (the first
   ``AMENT_PREFIX_PATH`` entry holding the marker
   ``share/ament_index/resource_index/packages/seg2track_ros``);
2. ``<prefix>/lib/seg2track_ros/<name>``;
3. only if the index has no such package: ``PATH`` (a plain ``pip install`` puts the
   console scripts there, without an ament index).

The error says exactly what was searched.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from seg2track_ros.errors import UserFacingError

PACKAGE = "seg2track_ros"
MARKER = Path("share/ament_index/resource_index/packages")


class ExecutableNotFoundError(UserFacingError):
    """An executable of this package is not installed where ROS looks for it."""


def package_prefix(package: str = PACKAGE) -> Path | None:
    """The install prefix of `package` in the ament index, or None if it is not there."""
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_prefix
    except ImportError:
        return _prefix_from_ament_prefix_path(package)
    try:
        return Path(get_package_prefix(package))
    except (PackageNotFoundError, LookupError, ValueError, OSError):  # OSError: unset
        return None


def _prefix_from_ament_prefix_path(package: str) -> Path | None:
    """ament_index_python's lookup without it: first AMENT_PREFIX_PATH entry with the
    package's marker file."""
    for entry in _ament_prefix_path():
        if (Path(entry) / MARKER / package).is_file():
            return Path(entry)
    return None


def _ament_prefix_path() -> list[str]:
    return [entry for entry in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if entry]


def find_executable(name: str, package: str = PACKAGE) -> Path:
    """The path of `package`'s executable `name`; ExecutableNotFoundError says where it
    looked."""
    prefix = package_prefix(package)
    if prefix is not None:
        candidate = prefix / "lib" / package / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
        raise ExecutableNotFoundError(
            f"{name} not found: the ament index places {package} at {prefix}, but"
            f" {candidate} is not an executable file; rebuild the workspace"
            f" (colcon build) and source its install/setup.bash"
        )
    on_path = shutil.which(name)
    if on_path is not None:
        return Path(on_path)
    searched = ", ".join(_ament_prefix_path()) or "(empty)"
    raise ExecutableNotFoundError(
        f"{name} not found: no AMENT_PREFIX_PATH entry holds the package {package}"
        f" ({MARKER / package}; AMENT_PREFIX_PATH={searched}), and {name} is not on PATH."
        f" Source your workspace's install/setup.bash after `colcon build` (ROS), or"
        f" env.sh in the repository (venv)"
    )
