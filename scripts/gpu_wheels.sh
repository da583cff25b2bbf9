#!/usr/bin/env bash
# Prepare .whl/ on this (development) machine: everything the GPU machine of the device
# tool lacks to run `seg2track bench` there. That machine has Python 3.12 with torch
# (CUDA), numpy, scipy, OpenCV, matplotlib, PyYAML, Pillow, tqdm and portalocker, but
# cannot download anything; .whl/ travels with the `run` call (carry: [".whl"]) and
# scripts/gpu_bench.sh installs it there.
#
#   .whl/py/       wheels installed there with `pip install --target /tmp/site`:
#                  sam2 (built here without its CUDA extension: pure Python), hydra-core,
#                  omegaconf, antlr4-python3-runtime, iopath, pycocotools, and rosbags with
#                  its needs (replay.py, imported by the latency benchmark, reads bags)
#   .whl/ros/      the ROS 2 wheels (rclpy, rmw_fastrtps_cpp, the message packages and
#                  everything they need) for CPython $PY_VERSION, installed there with
#                  `pip install --prefix /tmp/ros`: these wheels keep their Python packages
#                  and shared libraries in the wheel's data folder (prefix/lib/...), which
#                  `pip install --target` would drop
#   .whl/overlay/  seg2track_msgs and the vision_msgs fallback, colcon-built for CPython
#                  $PY_VERSION (install/<pkg>/{lib,share}, runtime files only). Their rosidl
#                  Python extensions are built per Python version (a 3.11 build aborts
#                  under 3.12 in PyUnicode_IS_ASCII). When .venv's Python is $PY_VERSION
#                  they come from `make env`'s install/; otherwise scripts/bootstrap.sh
#                  builds them (INTERFACES_ONLY=1) with a python$PY_VERSION found here, in a
#                  copy of the interface sources under $OVERLAY_CACHE: its own venv with the
#                  ROS 2 wheels at .venv's versions, build/ and install/ (kept: a second
#                  run rebuilds only what changed).
#
# Needs the project environment (`make env`: .venv/ and install/) and, unless .venv is
# Python $PY_VERSION, a CPython $PY_VERSION (python$PY_VERSION on PATH, a pyenv version, or
# OVERLAY_PYTHON) and network access for its ROS 2 wheels. Run from anywhere:
#   bash scripts/gpu_wheels.sh
# Environment: PY_VERSION (default 3.12, the GPU machine's), WHEELS (default <repo>/.whl),
# ROS_DISTRO (default jazzy), OVERLAY_PYTHON (the interpreter for the overlay build;
# default: found as above), OVERLAY_CACHE (default <repo>/.cache/gpu_overlay_py$PY_VERSION,
# git-ignored; delete it to rebuild from scratch).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY_VERSION="${PY_VERSION:-3.12}"
WHEELS="${WHEELS:-$ROOT/.whl}"
ROS_DISTRO="${ROS_DISTRO:-jazzy}"
PY="$ROOT/.venv/bin/python"
CPTAG="cp${PY_VERSION/./}"
OVERLAY_CACHE="${OVERLAY_CACHE:-$ROOT/.cache/gpu_overlay_py$PY_VERSION}"
INTERFACES=(seg2track_msgs vision_msgs)

log() { printf '\033[1m[gpu_wheels]\033[0m %s\n' "$*"; }
die() { printf '[gpu_wheels] error: %s\n' "$*" >&2; exit 1; }

[[ -x "$PY" ]] || die "no .venv here: run 'make env' first"

is_python() { # is_python CMD: CMD runs and is CPython $PY_VERSION
  "$1" -c "import platform, sys
sys.exit(platform.python_implementation() != 'CPython'
         or '%d.%d' % sys.version_info[:2] != '$PY_VERSION')" >/dev/null 2>&1
}
find_python() { # the absolute path of a CPython $PY_VERSION, or failure
  local cand
  local -a cands
  if [[ -n "${OVERLAY_PYTHON:-}" ]]; then
    cands=("$OVERLAY_PYTHON")
  else
    # python$PY_VERSION on PATH (a pyenv shim fails unless that version is selected),
    # then pyenv's installed $PY_VERSION.x, newest first
    cands=("python$PY_VERSION")
    mapfile -t -O 1 cands < <(
      printf '%s\n' "${PYENV_ROOT:-$HOME/.pyenv}/versions/$PY_VERSION".*/bin/"python$PY_VERSION" \
        | sort -rV
    )
  fi
  for cand in "${cands[@]}"; do
    if is_python "$cand"; then
      "$cand" -c 'import sys; print(sys.executable)'
      return 0
    fi
  done
  return 1
}
# The overlay's rosidl extensions must be built by the GPU machine's Python version.
venv_version=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
OVERLAY_PY=""
if [[ "$venv_version" != "$PY_VERSION" ]]; then
  OVERLAY_PY=$(find_python) || die "no CPython $PY_VERSION for the overlay: .venv is" \
    "Python $venv_version, and the rosidl extensions of seg2track_msgs and vision_msgs only" \
    "import under the Python they were built for. Install one (e.g. 'pyenv install" \
    "$PY_VERSION') or name it: OVERLAY_PYTHON=/path/to/python$PY_VERSION"
else
  for pkg in "${INTERFACES[@]}"; do
    [[ -d "$ROOT/install/$pkg/lib" ]] || die "install/$pkg missing: run 'make env' first"
  done
fi

# Pure-Python packages: `pip wheel` takes the published py3 wheel or builds one from the
# sdist (antlr4-python3-runtime 4.9.3 has only an sdist). Versions: those of .venv, which
# the test suite runs against.
PURE=(hydra-core omegaconf antlr4-python3-runtime iopath rosbags ruamel.yaml)
# Packages with compiled code: the CPython $PY_VERSION manylinux wheels.
BINARY=(pycocotools lz4 apsw backports.zstd)
# The ROS 2 packages the benchmark and tracker_node import, with everything they need.
ROS_ROOTS=(rclpy rmw-fastrtps-cpp std-msgs sensor-msgs geometry-msgs std-srvs
  diagnostic-msgs lifecycle-msgs builtin-interfaces)
# Already on the GPU machine (KINDS.md's package list): never carried, one version only.
ON_GPU=(numpy pyyaml setuptools typing-extensions packaging tqdm pillow portalocker)
# Not wanted: its .pth re-executes Python from a site directory; gpu_bench.sh sets
# LD_LIBRARY_PATH itself and /tmp/ros is no site directory.
SKIP=(ros-wheels-bootstrapper "${ON_GPU[@]}")

version_of() { # the version installed in .venv, or nothing
  "$PY" - "$1" <<'EOF' 2>/dev/null || true
import importlib.metadata as m, sys
try:
    print(m.version(sys.argv[1]))
except m.PackageNotFoundError:
    pass
EOF
}
pinned() { # NAME -> NAME==VERSION as in .venv (NAME alone when .venv lacks it)
  local v
  v=$(version_of "$1")
  if [[ -n "$v" ]]; then printf '%s==%s\n' "$1" "$v"; else printf '%s\n' "$1"; fi
}
normalize() { # a wheel file name -> its project name, normalized (PEP 503)
  local base="${1##*/}"
  base="${base%%-*}"
  printf '%s\n' "$base" | tr '[:upper:]_.' '[:lower:]--'
}

PLATFORMS=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 \
  manylinux2014_x86_64 manylinux1_x86_64; do
  PLATFORMS+=(--platform "$p")
done
DOWNLOAD=("$PY" -m pip download --disable-pip-version-check -q --only-binary=:all:
  --python-version "$PY_VERSION" --implementation cp "${PLATFORMS[@]}")

# This machine's pip configuration names local index folders that may be absent; pip
# warns about them once per package. Those lines are dropped, everything else shown.
quiet() { "$@" 2> >(grep -v "^WARNING: Location 'file:" >&2); }

STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/py" "$STAGE/ros" "$STAGE/overlay" "$STAGE/build"

# --- 1. sam2, pure Python without its CUDA extension ----------------------------------
sam2_spec=$(pinned sam2)
[[ "$sam2_spec" == sam2==* ]] || sam2_spec="sam2==1.1.0"
log "building $sam2_spec (SAM2_BUILD_CUDA=0)"
SAM2_BUILD_CUDA=0 quiet "$PY" -m pip wheel --disable-pip-version-check -q --no-deps \
  --no-build-isolation -w "$STAGE/build" "$sam2_spec"
sam2_whl=$(ls "$STAGE"/build/sam2-*.whl)
[[ "$sam2_whl" == *-py3-none-any.whl ]] || die "sam2 wheel is not pure: ${sam2_whl##*/}"
if unzip -Z1 "$sam2_whl" | grep -E '\.(so|pyd)$'; then
  die "sam2 wheel holds compiled code"
fi
unzip -p "$sam2_whl" '*.dist-info/WHEEL' | grep -qx 'Root-Is-Purelib: true' \
  || die "sam2 wheel is not marked purelib"
mv "$sam2_whl" "$STAGE/py/"

# --- 2. the other Python packages -------------------------------------------------------
specs=()
for p in "${PURE[@]}"; do specs+=("$(pinned "$p")"); done
log "pure-Python wheels: ${specs[*]}"
quiet "$PY" -m pip wheel --disable-pip-version-check -q --no-deps -w "$STAGE/build" "${specs[@]}"
for whl in "$STAGE"/build/*.whl; do
  [[ "$whl" == *-none-any.whl ]] || die "${whl##*/} is not a pure-Python wheel"
  mv "$whl" "$STAGE/py/"
done
specs=()
for p in "${BINARY[@]}"; do specs+=("$(pinned "$p")"); done
log "CPython $PY_VERSION wheels: ${specs[*]}"
quiet "${DOWNLOAD[@]}" --no-deps -d "$STAGE/py" "${specs[@]}"

# --- 3. ROS 2 ---------------------------------------------------------------------------
# rosidl_adapter (pulled in by rclpy) needs empy, which may come as an sdist only: a
# pure wheel of it built here lets the binary-only resolution below go through.
quiet "$PY" -m pip wheel --disable-pip-version-check -q --no-deps -w "$STAGE/build" "$(pinned empy)"
specs=()
for w in "${ROS_ROOTS[@]}"; do specs+=("$(pinned "ros-$ROS_DISTRO-$w")"); done
log "ROS 2 $ROS_DISTRO wheels for CPython $PY_VERSION: ${specs[*]} (and their needs)"
quiet "${DOWNLOAD[@]}" --find-links "$STAGE/build" -d "$STAGE/ros" "${specs[@]}"
for whl in "$STAGE"/ros/*.whl; do
  name=$(normalize "$whl")
  for skip in "${SKIP[@]}"; do
    if [[ "$name" == "$skip" ]]; then
      rm "$whl"
      break
    fi
  done
done
for whl in "$STAGE"/ros/*.whl "$STAGE"/py/*.whl; do
  case "${whl##*/}" in
    *-none-any.whl | *-"$CPTAG"-*.whl | *-abi3-*.whl) ;;
    *) die "${whl##*/} does not fit CPython $PY_VERSION" ;;
  esac
done
dups=$(for whl in "$STAGE"/ros/*.whl "$STAGE"/py/*.whl; do normalize "$whl"; done | sort | uniq -d)
[[ -z "$dups" ]] || die "two versions of: $dups"

# --- 4. our interfaces, colcon-built for CPython $PY_VERSION ------------------------------
overlay_install="$ROOT/install"
overlay_python="$PY"
if [[ -n "$OVERLAY_PY" ]]; then
  # bootstrap.sh in a copy of the interface sources (the working tree's, uncommitted edits
  # included), with its own .venv, build/, install/ and log/ there.
  log "building the overlay for Python $PY_VERSION with $OVERLAY_PY in $OVERLAY_CACHE"
  started=$SECONDS
  mkdir -p "$OVERLAY_CACHE"
  rm -rf "$OVERLAY_CACHE/scripts" "$OVERLAY_CACHE/seg2track_msgs" "$OVERLAY_CACHE/fallback"
  while IFS= read -r -d '' file; do
    if [[ -f "$file" ]]; then cp --parents -p "$file" "$OVERLAY_CACHE/"; fi
  done < <(git ls-files -z --cached --others --exclude-standard -- \
    scripts/bootstrap.sh seg2track_msgs fallback)
  # The ROS 2 wheels at .venv's versions: those .whl/ros carries for the runtime.
  "$PY" -m pip list --disable-pip-version-check --format=freeze 2>/dev/null \
    | grep -i '^ros-' >"$STAGE/constraints.txt" || die "no ROS 2 wheels in .venv"
  if ! cmp -s "$STAGE/constraints.txt" "$OVERLAY_CACHE/constraints.txt"; then
    cp "$STAGE/constraints.txt" "$OVERLAY_CACHE/constraints.txt"
    rm -f "$OVERLAY_CACHE/.venv/.seg2track/pip" # bootstrap.sh reinstalls with them
  fi
  # PIP_CONSTRAINT replaces pip's configured constraint files: name those too.
  pip_constraints="${PIP_CONSTRAINT:-$(
    "$PY" -m pip config list 2>/dev/null | sed -n "s/^[^:][^=]*\.constraint='\(.*\)'$/\1/p"
  )}"
  # A clean environment: nothing of .venv's (env.sh) or a sourced ROS 2 may leak in.
  (
    cd "$OVERLAY_CACHE"
    quiet env -u VIRTUAL_ENV -u PYTHONPATH -u PYTHONHOME -u AMENT_PREFIX_PATH -u CMAKE_PREFIX_PATH \
      -u COLCON_PREFIX_PATH -u LD_LIBRARY_PATH -u _ROS_WHEELS_BOOTSTRAP_COMPLETE \
      PIP_CONSTRAINT="${pip_constraints:+$pip_constraints }$OVERLAY_CACHE/constraints.txt" \
      INTERFACES_ONLY=1 PYTHON="$OVERLAY_PY" ROS_DISTRO="$ROS_DISTRO" \
      bash scripts/bootstrap.sh
  ) || die "building the overlay for Python $PY_VERSION failed (logs: $OVERLAY_CACHE/log)"
  log "overlay build: $((SECONDS - started)) s"
  overlay_install="$OVERLAY_CACHE/install"
  overlay_python="$OVERLAY_CACHE/.venv/bin/python"
fi
for pkg in "${INTERFACES[@]}"; do
  [[ -d "$overlay_install/$pkg/lib/python$PY_VERSION/site-packages/$pkg" ]] \
    || die "$overlay_install/$pkg holds no Python $PY_VERSION build"
  mkdir -p "$STAGE/overlay/$pkg"
  cp -a "$overlay_install/$pkg/lib" "$overlay_install/$pkg/share" "$STAGE/overlay/$pkg/"
  rm -rf "$STAGE/overlay/$pkg/share/$pkg/cmake"
  find "$STAGE/overlay/$pkg" -name __pycache__ -prune -exec rm -rf {} +
done
log "overlay: ${INTERFACES[*]} (built here with $(
  "$overlay_python" -c 'import platform; print("Python " + platform.python_version())'))"

# --- 5. swap in, sizes ---------------------------------------------------------------------
rm -rf "$WHEELS"
mkdir -p "$WHEELS"
mv "$STAGE/py" "$STAGE/ros" "$STAGE/overlay" "$WHEELS/"
printf '%s\n' "made by scripts/gpu_wheels.sh for CPython $PY_VERSION on $(date -u +%F)" \
  >"$WHEELS/README"

carried=$(du -sb "$WHEELS" | cut -f1)
tree=$(
  cd "$ROOT"
  git ls-files -z --cached --others --exclude-standard | xargs -0 -r du -cb 2>/dev/null \
    | tail -n1 | cut -f1
)
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
count() { find "$1" -name '*.whl' | wc -l; }
size() { du -sh "$1" | cut -f1; }
log "py/: $(count "$WHEELS/py") wheels, $(size "$WHEELS/py");" \
  "ros/: $(count "$WHEELS/ros") wheels, $(size "$WHEELS/ros"); overlay/: $(size "$WHEELS/overlay")"
log "carried: $WHEELS $(mib "$carried"); working tree $(mib "$tree");" \
  "together $(mib $((carried + tree))) of the 64 MiB a run call may send"
if [[ "$WHEELS" == "$ROOT"/* ]] && ! git -C "$ROOT" check-ignore -q "$WHEELS"; then
  log "REMINDER: ${WHEELS#"$ROOT"/} is not ignored by git; add '/${WHEELS#"$ROOT"/}/' to" \
    ".gitignore (or .git/info/exclude), or it travels as untracked files and may be committed"
fi
(($((carried + tree)) < 60 * 1048576)) || die "over 60 MiB: the run call would refuse it"
