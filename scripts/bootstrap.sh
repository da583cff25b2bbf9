#!/usr/bin/env bash
# Build the complete seg2track_ros environment on a machine without ROS 2:
#   .venv/     Python 3.11 venv with the ROS 2 wheels from PyPI, torch, sam2 and tools
#   install/   colcon install of seg2track_msgs, the vision_msgs fallback (only when
#              no vision_msgs is found) and seg2track_ros itself
# Then `source env.sh` gives a shell where rclpy and our messages import.
#
# Idempotent: every step records a hash of its inputs under .venv/.seg2track/ and
# is skipped when nothing changed, so a second run takes a few seconds.
#
# Environment:
#   ROS_DISTRO   jazzy (default) or kilted. Changing it rebuilds .venv and install/.
#   PYTHON       interpreter for the venv (default: python3.11; another CPython only
#                with INTERFACES_ONLY=1).
#   TORCH_SPEC   pip requirement for torch when the venv has none (default:
#                torch==2.13.0; on this project's machines that is a local CPU wheel).
#                A torch already importable in the venv (e.g. a CUDA build) is kept.
#   VENV_SYSTEM_SITE_PACKAGES=1  create the venv with --system-site-packages so a
#                torch installed system-wide (CUDA) is used instead of installing one.
#   INTERFACES_ONLY=1  only what building the interfaces needs: the venv gets the ROS 2
#                wheels, numpy and colcon (no torch, sam2 or test tools) and install/
#                gets seg2track_msgs and the vision_msgs fallback, not seg2track_ros.
#                PYTHON may then be any CPython the ROS 2 wheels exist for (3.12 too):
#                scripts/gpu_wheels.sh builds the GPU machine's overlay this way.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

ROS_DISTRO="${ROS_DISTRO:-jazzy}"
PYTHON="${PYTHON:-python3.11}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
INTERFACES_ONLY="${INTERFACES_ONLY:-0}"
VENV="$ROOT/.venv"
STAMPS="$VENV/.seg2track"

log() { printf '\033[1m[bootstrap]\033[0m %s\n' "$*"; }
die() { printf '[bootstrap] error: %s\n' "$*" >&2; exit 1; }

case "$ROS_DISTRO" in
  jazzy | kilted) ;;
  *) die "ROS_DISTRO must be jazzy or kilted (got '$ROS_DISTRO')" ;;
esac

# ROS 2 wheels (without the ros-<distro>- prefix). Beyond rclpy and the message
# packages these are what rosidl_generate_interfaces needs to build our interfaces.
ROS_WHEELS=(
  rclpy rmw-fastrtps-cpp
  std-msgs sensor-msgs geometry-msgs std-srvs diagnostic-msgs lifecycle-msgs builtin-interfaces
  visualization-msgs
  ament-index-python ament-package ament-cmake ament-cmake-ros ament-cmake-include-directories
  ament-cmake-python rmw-implementation-cmake
  rosidl-default-generators rosidl-default-runtime rosidl-core-generators
  rosidl-generator-type-description rosidl-dynamic-typesupport
  rosidl-typesupport-c rosidl-typesupport-cpp
  rosidl-typesupport-fastrtps-c rosidl-typesupport-fastrtps-cpp
  rosidl-typesupport-introspection-c rosidl-typesupport-introspection-cpp
)
case "$ROS_DISTRO" in
  # Jazzy: ament_cmake_ros looks up gmock/gtest/pytest; the rosidl CMake uses the
  # python and Fast-RTPS CMake modules, which Kilted no longer has. Kilted split
  # ament_cmake_ros into ament_cmake_ros_core.
  jazzy) ROS_WHEELS+=(ament-cmake-gmock ament-cmake-gtest ament-cmake-pytest
    python-cmake-module fastrtps-cmake-module) ;;
  kilted) ROS_WHEELS+=(ament-cmake-ros-core) ;;
esac

# Everything else the package and its tests use. sam2's own dependency list pulls
# torchvision, which has no CPU build here; its video path never imports it, so
# sam2 is installed with --no-deps plus the packages it really needs.
PY_DEPS=(
  "numpy>=1.26" scipy opencv-python-headless pycocotools trackeval rosbags matplotlib
  pyyaml pytest hypothesis ruff colcon-common-extensions "setuptools<80"
  hydra-core iopath tqdm pillow
)
SAM2_SPEC="sam2==1.1.0"
if [[ "$INTERFACES_ONLY" == 1 ]]; then
  PY_DEPS=("numpy>=1.26" colcon-common-extensions "setuptools<80")
fi

hash_of() { printf '%s\n' "$@" | sha256sum | cut -d' ' -f1; }
stamp_ok() { [[ -f "$STAMPS/$1" && "$(cat "$STAMPS/$1")" == "$2" ]]; }
stamp_set() { mkdir -p "$STAMPS"; printf '%s' "$2" >"$STAMPS/$1"; }

# --- 1. the venv -------------------------------------------------------------------
if [[ -d "$VENV" && -f "$STAMPS/distro" && "$(cat "$STAMPS/distro")" != "$ROS_DISTRO" ]]; then
  log "ROS_DISTRO changed from $(cat "$STAMPS/distro") to $ROS_DISTRO: rebuilding .venv and install/"
  rm -rf "$VENV" "$ROOT/build" "$ROOT/install" "$ROOT/log"
fi
if [[ ! -x "$VENV/bin/python" ]]; then
  command -v "$PYTHON" >/dev/null || die "$PYTHON not found (set PYTHON=/path/to/python3.11)"
  if [[ "$INTERFACES_ONLY" != 1 ]]; then
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
      || die "$PYTHON is not Python 3.11: the environment (torch wheel, tests) is CPython 3.11"
  fi
  venv_args=()
  [[ "${VENV_SYSTEM_SITE_PACKAGES:-0}" == 1 ]] && venv_args+=(--system-site-packages)
  log "creating .venv with $PYTHON ${venv_args[*]}"
  "$PYTHON" -m venv "${venv_args[@]}" "$VENV"
  stamp_set distro "$ROS_DISTRO"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check -q)

# --- 2. Python packages ----------------------------------------------------------
ros_reqs=()
for w in "${ROS_WHEELS[@]}"; do ros_reqs+=("ros-$ROS_DISTRO-$w"); done
deps_hash=$(hash_of "$ROS_DISTRO" "${ros_reqs[@]}" "${PY_DEPS[@]}" "$SAM2_SPEC" "$TORCH_SPEC")
if ! stamp_ok pip "$deps_hash"; then
  log "installing ROS 2 $ROS_DISTRO wheels and Python dependencies"
  "${PIP[@]}" install "${ros_reqs[@]}" "${PY_DEPS[@]}"
  if [[ "$INTERFACES_ONLY" != 1 ]]; then
    # The bootstrapper's .pth re-executes Python with the wheels' LD_LIBRARY_PATH; the
    # probes below run in that re-executed process like every other Python here.
    if "$PY" -c 'import torch' 2>/dev/null; then
      log "keeping the installed torch $("$PY" -c 'import torch; print(torch.__version__)')"
    else
      log "installing $TORCH_SPEC"
      "${PIP[@]}" install "$TORCH_SPEC" "setuptools<80"  # colcon-core needs setuptools<80
    fi
    log "installing $SAM2_SPEC (no CUDA extension, no torchvision)"
    SAM2_BUILD_CUDA=0 "${PIP[@]}" install --no-build-isolation --no-deps "$SAM2_SPEC"
  fi
  stamp_set pip "$deps_hash"
fi

# --- 3. the wheels' exported CMake files name their build machine's paths ------------
# (/opt/python/cp311-cp311/... for 3.11); point them at this venv's Python and numpy
# headers.
py_ver=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
py_build="/opt/python/cp${py_ver/./}-cp${py_ver/./}"
py_include=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
np_include=$("$PY" -c 'import numpy; print(numpy.get_include())')
mapfile -t stale < <(grep -rl "$py_build" "$VENV/share" --include='*.cmake' 2>/dev/null || true)
if ((${#stale[@]})); then
  log "rewriting hard-coded paths in ${#stale[@]} CMake files"
  sed -i \
    -e "s#$py_build/lib/python$py_ver/site-packages/numpy/_core/include#$np_include#g" \
    -e "s#$py_build/include/python$py_ver#$py_include#g" \
    "${stale[@]}"
fi

# --- 4. colcon build of the interfaces and the package ------------------------------
# The vision_msgs fallback is built only when no vision_msgs is installed in any
# prefix we build against (a ROS 2 system sourced in this shell, or the venv).
has_vision_msgs() {
  local prefix
  IFS=: read -ra prefixes <<<"${AMENT_PREFIX_PATH:-}:$VENV"
  for prefix in "${prefixes[@]}"; do
    [[ -n "$prefix" && "$prefix" != "$ROOT/install"* ]] || continue
    [[ -f "$prefix/share/ament_index/resource_index/packages/vision_msgs" ]] && return 0
  done
  return 1
}
# A plain (copying) install: env.sh puts the source tree first on PYTHONPATH, so Python
# edits take effect without a rebuild, while the installed egg-info provides the
# console-script entry points.
base_paths=("$ROOT" "$ROOT/seg2track_msgs")
sources=(package.xml setup.py setup.cfg resource launch config seg2track_msgs fallback)
if [[ "$INTERFACES_ONLY" == 1 ]]; then
  base_paths=("$ROOT/seg2track_msgs")
  sources=(seg2track_msgs fallback)
fi
if has_vision_msgs; then
  log "vision_msgs found: using it (the fallback is not built)"
  rm -rf "$ROOT/install/vision_msgs" "$ROOT/build/vision_msgs"
else
  base_paths+=("$ROOT/fallback/vision_msgs")
fi
build_inputs=$(
  cd "$ROOT"
  find "${sources[@]}" -type f -not -name '*.pyc' -print0 2>/dev/null | sort -z | xargs -0 sha256sum
)
build_hash=$(hash_of "$deps_hash" "${base_paths[@]}" "$build_inputs")
if ! stamp_ok colcon "$build_hash" || [[ ! -d "$ROOT/install/seg2track_msgs" ]]; then
  log "colcon build: ${base_paths[*]#"$ROOT/"}"
  (
    export PATH="$VENV/bin:$PATH"
    export AMENT_PREFIX_PATH="$VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
    export CMAKE_PREFIX_PATH="$VENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
    "$VENV/bin/colcon" --log-base "$ROOT/log" build \
      --base-paths "${base_paths[@]}" \
      --build-base "$ROOT/build" --install-base "$ROOT/install" \
      --event-handlers console_direct- summary+ \
      --cmake-args -DPython3_EXECUTABLE="$PY" -DBUILD_TESTING=OFF
  ) || die "colcon build failed; the per-package logs are under log/latest_build/"
  stamp_set colcon "$build_hash"
fi

if [[ "$INTERFACES_ONLY" == 1 ]]; then
  log "done: the interfaces for Python $py_ver are in ${ROOT}/install"
else
  log "done. Use it with:  source env.sh"
fi
