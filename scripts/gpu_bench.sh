#!/usr/bin/env bash
# The GPU benchmark, run ON the device tool's GPU machine from the repository root with
# `.whl` carried (made on the development machine by scripts/gpu_wheels.sh):
#
#   set -o pipefail; PYTHONUNBUFFERED=1 bash scripts/gpu_bench.sh check speed:small \
#     2>&1 | tee $OUT/log
#
# Arguments are phases, run in order, each PHASE or PHASE:MODEL[,MODEL...] (default
# model: small):
#   check     machine, Python, torch and CUDA; imports; a ROS 2 round trip through our
#             messages; a quick tiny/256 run of both engines (nothing kept)
#   speed     per-frame time vs objects, ours and sam2's predictor, compile off and on
#   memory    memory vs sequence length (5 objects)
#   latency   image -> tracks latency through tracker_node over ROS 2 (Fast DDS)
#   host      host overhead (SAM 2 at a tiny input size)
#   profile   torch.profiler of Tracker.step, PROFILE_OBJECTS objects per model, compile off
#             (seg2track_ros.bench.profile): $OUT/profile_MODEL.txt
#   all       each of the above but check, one after the other
# (the sections are those `seg2track bench --skip` names: a new one is a phase too).
# Each phase is one `seg2track bench` command that skips every other section, run in a
# folder of its own; its BENCHMARKS.md is then merged (scripts/merge_bench.py) into
# $OUT/BENCHMARKS.md, sections keyed like the repository's, plots in $OUT/benchmarks/
# (or $OUT/benchmarks.tar when more than 8 files would come back). Merge that into the
# repository's BENCHMARKS.md with scripts/merge_bench.py (README, "Benchmarks").
#
# One `run` call may take 10 minutes: phases are started while BUDGET_S (default 540)
# seconds from the script's start are not used up, each under a timeout for what is
# left; a phase cut off loses the section it was writing, never the earlier ones.
#
# Environment (defaults in brackets): DEVICE [cuda], IMAGE_SIZE [1024], MODE [full],
# COMPILE for speed [both], OBJECTS ["1 2 5 10 20 50"], LENGTHS
# ["50 100 200 500 1000 2000"], FRAMES [the mode's], BENCH_ARGS [none: more arguments
# for every `seg2track bench`], CHECK_IMAGE_SIZE [256], PROFILE_OBJECTS [20],
# BUDGET_S [540], PYTHON [python3], WHEELS [.whl], SITE [/tmp/site], ROS_PREFIX [/tmp/ros], OUT [/tmp/seg2track_gpu_out],
# ROS_AUTOMATIC_DISCOVERY_RANGE [LOCALHOST]. A dry run of the logic on a CPU machine:
# DEVICE=cpu IMAGE_SIZE=128 MODE=quick COMPILE=off PYTHON=... WHEELS=...
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1
PYTHON="${PYTHON:-python3}"
WHEELS="${WHEELS:-$ROOT/.whl}"
DEVICE="${DEVICE:-cuda}"
IMAGE_SIZE="${IMAGE_SIZE:-1024}"
MODE="${MODE:-full}"
COMPILE="${COMPILE:-both}"
OBJECTS="${OBJECTS:-1 2 5 10 20 50}"
LENGTHS="${LENGTHS:-50 100 200 500 1000 2000}"
FRAMES="${FRAMES:-}"
BENCH_ARGS="${BENCH_ARGS:-}"
CHECK_IMAGE_SIZE="${CHECK_IMAGE_SIZE:-256}"
PROFILE_OBJECTS="${PROFILE_OBJECTS:-20}"
BUDGET_S="${BUDGET_S:-540}"
MIN_PHASE_S="${MIN_PHASE_S:-45}"
SITE="${SITE:-/tmp/site}"
ROS_PREFIX="${ROS_PREFIX:-/tmp/ros}"
OUT="${OUT:-/tmp/seg2track_gpu_out}"
export PYTHONUNBUFFERED=1

say() { printf '[gpu_bench %4ds] %s\n' "$SECONDS" "$*"; }
fail() { say "ERROR: $*"; exit 1; }

(($#)) || set -- check speed:small
PYTHON="$(command -v "$PYTHON")" || fail "no $PYTHON"
[[ -d "$WHEELS/py" && -d "$WHEELS/ros" && -d "$WHEELS/overlay" ]] \
  || fail "$WHEELS is incomplete: run scripts/gpu_wheels.sh here and carry .whl"
mkdir -p "$OUT" || fail "cannot write $OUT"
OUT="$(cd "$OUT" && pwd)"

# --- 1. the carried wheels (kept between calls while the machine stays warm) -----------
PIP=("$PYTHON" -m pip install -q --disable-pip-version-check --no-index --no-deps
  --no-compile --no-cache-dir --upgrade)
stamp="$(cd "$WHEELS" && find py ros -name '*.whl' | sort | sha256sum | cut -c1-16)"
if [[ -f "$SITE/.seg2track-wheels" && "$(cat "$SITE/.seg2track-wheels")" == "$stamp" ]]; then
  say "carried wheels already installed in $SITE and $ROS_PREFIX"
else
  say "installing $(find "$WHEELS/py" -name '*.whl' | wc -l) wheels into $SITE and" \
    "$(find "$WHEELS/ros" -name '*.whl' | wc -l) ROS 2 wheels into $ROS_PREFIX"
  rm -rf "$SITE" "$ROS_PREFIX"
  "${PIP[@]}" --target "$SITE" "$WHEELS"/py/*.whl || fail "pip install --target $SITE failed"
  # The ROS wheels keep their packages and libraries in the wheel's data folder
  # (prefix/lib, prefix/share): a prefix install keeps that layout.
  "${PIP[@]}" --ignore-installed --no-warn-script-location --prefix "$ROS_PREFIX" \
    "$WHEELS"/ros/*.whl || fail "pip install --prefix $ROS_PREFIX failed"
  echo "$stamp" >"$SITE/.seg2track-wheels"
fi

# --- 2. the environment: what env.sh does for the venv -------------------------------------
paths_py=("$ROOT" "$SITE")
paths_ld=()
paths_ament=()
while IFS= read -r dir; do paths_py+=("$dir"); done < <(
  find "$ROS_PREFIX" -maxdepth 5 -type d \( -name site-packages -o -name dist-packages \) | sort
)
for dir in "${paths_py[@]:2}"; do # the ROS wheels' bundled libraries (auditwheel)
  for libs in "$dir"/ros_*.libs; do [[ -d "$libs" ]] && paths_ld+=("$libs"); done
done
while IFS= read -r index; do # prefixes holding an ament index
  prefix="${index%/share/ament_index}"
  paths_ament+=("$prefix")
  [[ -d "$prefix/lib" ]] && paths_ld+=("$prefix/lib")
done < <(find "$ROS_PREFIX" -maxdepth 4 -type d -path '*/share/ament_index' | sort)
for prefix in "$WHEELS"/overlay/*; do # seg2track_msgs, vision_msgs
  paths_ament=("$prefix" "${paths_ament[@]}")
  paths_ld=("$prefix/lib" "${paths_ld[@]}")
  for dir in "$prefix"/lib/python3*/site-packages; do [[ -d "$dir" ]] && paths_py+=("$dir"); done
done
join() { local IFS=:; printf '%s' "$*"; }
PYTHONPATH="$(join "${paths_py[@]}")${PYTHONPATH:+:$PYTHONPATH}"
LD_LIBRARY_PATH="$(join "${paths_ld[@]}")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
AMENT_PREFIX_PATH="$(join "${paths_ament[@]}")"
export PYTHONPATH LD_LIBRARY_PATH AMENT_PREFIX_PATH
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$((RANDOM % 100 + 1))}"
export ROS_LOG_DIR="${ROS_LOG_DIR:-/tmp/seg2track_ros_log}"
export _ROS_WHEELS_BOOTSTRAP_COMPLETE=1 # LD_LIBRARY_PATH is set above
export MPLBACKEND=Agg
# tracker_node, as replay.py starts it (its colcon entry point is not carried)
BIN=/tmp/seg2track_bin
mkdir -p "$BIN"
printf '#!/bin/sh\nexec "%s" -m seg2track_ros.ros.tracker_node "$@"\n' "$PYTHON" >"$BIN/tracker_node"
chmod +x "$BIN/tracker_node"
export PATH="$BIN:$PATH"

# --- 3. the phases asked for: the sections `seg2track bench --skip` knows --------------
mapfile -t SECTIONS < <("$PYTHON" - <<'EOF'
import argparse

from seg2track_ros.bench import command

parser = command.add_parser(argparse.ArgumentParser().add_subparsers())
print("\n".join(next(a for a in parser._actions if a.dest == "skip").choices))
EOF
)
((${#SECTIONS[@]})) || fail "cannot read the sections of seg2track bench (imports above?)"
PHASES=() # PHASE:MODELS, expanded
for arg in "$@"; do
  phase="${arg%%:*}"
  models="small"
  [[ "$arg" == *:* ]] && models="${arg#*:}"
  if [[ "$phase" == all ]]; then
    for section in "${SECTIONS[@]}"; do PHASES+=("$section:$models"); done
  elif [[ "$phase" == check || "$phase" == profile ]] || printf '%s\n' "${SECTIONS[@]}" | grep -qx "$phase"; then
    PHASES+=("$phase:$models")
  else
    fail "unknown phase '$arg': check, all or one of: ${SECTIONS[*]} (PHASE:MODEL,MODEL)"
  fi
done

# --- 4. what this machine is ------------------------------------------------------------
say "phases: ${PHASES[*]} | DEVICE=$DEVICE IMAGE_SIZE=$IMAGE_SIZE MODE=$MODE" \
  "COMPILE=$COMPILE OBJECTS='$OBJECTS' LENGTHS='$LENGTHS' BUDGET_S=$BUDGET_S"
command -v nvidia-smi >/dev/null && nvidia-smi -L
"$PYTHON" - <<'EOF'
import platform, sys
import torch
print(f"Python {platform.python_version()} ({sys.executable}); torch {torch.__version__},"
      f" CUDA {torch.version.cuda}, available: {torch.cuda.is_available()}")
if torch.cuda.is_available():
    print("GPU:", torch.cuda.get_device_name(0))
EOF

ROS_OK=""
ros_probe() { # our messages and the vision_msgs fallback through rclpy and Fast DDS
  timeout -k 10 90 "$PYTHON" - <<'EOF'
import time

import rclpy
from rclpy.serialization import deserialize_message, serialize_message
from seg2track_msgs.msg import TrackedObject, TrackedObjectArray
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger  # noqa: F401 (tracker_node's imports)
from diagnostic_msgs.msg import DiagnosticArray  # noqa: F401
from vision_msgs.msg import Detection2D, Detection2DArray

array = TrackedObjectArray()
obj = TrackedObject(track_id=7, class_id="car", mask_score=0.5)
obj.mask.height, obj.mask.width, obj.mask.counts = 4, 5, [3, 17]
obj.bbox.center.position.x = 12.5
array.objects.append(obj)
back = deserialize_message(serialize_message(array), TrackedObjectArray)
assert back.objects[0].track_id == 7 and list(back.objects[0].mask.counts) == [3, 17], back
det = Detection2DArray(detections=[Detection2D()])
assert len(deserialize_message(serialize_message(det), Detection2DArray).detections) == 1

rclpy.init()
node = rclpy.create_node("seg2track_probe")
got = []
node.create_subscription(TrackedObjectArray, "probe", got.append, 10)
pub = node.create_publisher(TrackedObjectArray, "probe", 10)
end = time.monotonic() + 30
while not got and time.monotonic() < end:
    pub.publish(array)
    rclpy.spin_once(node, timeout_sec=0.1)
node.destroy_node()
rclpy.shutdown()
assert got and got[0].objects[0].mask.width == 5, "no message came back over DDS in 30 s"
print(f"ROS 2 ok: rclpy {rclpy.__file__}, Image {Image.__module__}, round trip over DDS")
EOF
}

# --- 5. the phases ------------------------------------------------------------------------
WORK="$(mktemp -d /tmp/seg2track_gpu_bench.XXXXXX)"
run_count=0
bench() { # bench LABEL ARGS...: one `seg2track bench` in a folder of its own, merged into $OUT
  local label="$1" left rc dir
  shift
  left=$((BUDGET_S - SECONDS))
  if ((left < MIN_PHASE_S)); then
    say "SKIPPED $label: ${left}s of BUDGET_S=$BUDGET_S left"
    return 1
  fi
  run_count=$((run_count + 1))
  dir="$WORK/$run_count"
  mkdir -p "$dir"
  local args=(bench --mode "$MODE" --device "$DEVICE" --image-size "$IMAGE_SIZE" "$@")
  [[ -n "$FRAMES" ]] && args+=(--frames "$FRAMES")
  # shellcheck disable=SC2206  # BENCH_ARGS is split into arguments on purpose
  [[ -n "$BENCH_ARGS" ]] && args+=($BENCH_ARGS)
  say "$label: seg2track ${args[*]} (timeout ${left}s)"
  (cd "$dir" && timeout -s INT -k 30 "$left" "$PYTHON" -m seg2track_ros.cli "${args[@]}")
  rc=$?
  if ((rc == 124 || rc == 130 || rc == 137)); then
    say "$label: CUT OFF at the time budget (exit $rc); its unfinished section is lost"
  elif ((rc != 0)); then
    say "$label: FAILED (exit $rc)"
  else
    say "$label: done"
  fi
  if [[ -f "$dir/BENCHMARKS.md" ]]; then # what it wrote, also when cut off later
    "$PYTHON" "$ROOT/scripts/merge_bench.py" "$dir/BENCHMARKS.md" --into "$OUT/BENCHMARKS.md" \
      || rc=1
  fi
  return "$rc"
}

status=0
for entry in "${PHASES[@]}"; do
  phase="${entry%%:*}"
  models="${entry#*:}"
  read -ra model_list <<<"${models//,/ }"
  skip=()
  for section in "${SECTIONS[@]}"; do [[ "$section" == "$phase" ]] || skip+=("$section"); done
  case "$phase" in
    check)
      say "check: imports"
      "$PYTHON" -c 'import sam2, hydra, omegaconf, iopath, pycocotools, rosbags.rosbag2
import seg2track_ros.bench.engine, seg2track_ros.bench.report, seg2track_ros.cli
print("imports ok: sam2", sam2.__file__)' || status=1
      say "check: ROS 2"
      if ros_probe; then ROS_OK=1; else ROS_OK=0; status=1; fi
      say "check: quick speed run of both engines (tiny, $CHECK_IMAGE_SIZE px, 1 and 2 objects;" \
        "nothing kept)"
      quick_skip=()
      for section in "${SECTIONS[@]}"; do [[ "$section" == speed ]] || quick_skip+=("$section"); done
      scratch="$(mktemp -d)"
      (cd "$scratch" && timeout -k 10 180 "$PYTHON" -m seg2track_ros.cli bench --mode quick \
        --device "$DEVICE" --models tiny --image-size "$CHECK_IMAGE_SIZE" --skip "${quick_skip[@]}") \
        || { say "check: quick run FAILED"; status=1; }
      rm -rf "$scratch"
      ;;
    profile)
      for model in "${model_list[@]}"; do
        left=$((BUDGET_S - SECONDS))
        if ((left < MIN_PHASE_S)); then
          say "SKIPPED profile $model: ${left}s of BUDGET_S=$BUDGET_S left"
          status=1
          continue
        fi
        say "profile $model: $PROFILE_OBJECTS objects at $IMAGE_SIZE px (timeout ${left}s)"
        timeout -k 10 "$left" "$PYTHON" -m seg2track_ros.bench.profile --model "$model" \
          --image-size "$IMAGE_SIZE" --objects "$PROFILE_OBJECTS" --device "$DEVICE" \
          >"$OUT/profile_$model.txt" || { say "profile $model: FAILED"; status=1; }
        sed -n '1,/^operators/p' "$OUT/profile_$model.txt"
      done
      ;;
    speed)
      # shellcheck disable=SC2086  # OBJECTS is a list of numbers
      bench "speed ${model_list[*]}" --models "${model_list[@]}" --compile "$COMPILE" \
        --objects $OBJECTS --skip "${skip[@]}" || status=1
      ;;
    memory)
      # shellcheck disable=SC2086  # LENGTHS is a list of numbers
      bench "memory ${model_list[*]}" --models "${model_list[@]}" --compile off \
        --lengths $LENGTHS --skip "${skip[@]}" || status=1
      ;;
    latency)
      if [[ -z "$ROS_OK" ]]; then
        say "latency: ROS 2 check first"
        if ros_probe; then ROS_OK=1; else ROS_OK=0; fi
      fi
      if [[ "$ROS_OK" != 1 ]]; then
        say "SKIPPED latency: rclpy with our messages does not work here (see above)"
        status=1
        continue
      fi
      bench "latency ${model_list[*]}" --models "${model_list[@]}" --compile off \
        --skip "${skip[@]}" || status=1
      ;;
    *) # any other section (host, ...): uncompiled, as the bench measures it
      bench "$phase ${model_list[*]}" --models "${model_list[@]}" --compile off \
        --skip "${skip[@]}" || status=1
      ;;
  esac
done
rm -rf "$WORK"

# --- 6. what comes back: at most 8 files, 2 folders down ----------------------------------
if [[ -d "$OUT/benchmarks" ]]; then
  files=$(find "$OUT" -type f | wc -l)
  [[ -f "$OUT/log" ]] || files=$((files + 1)) # the tee'd log, if the caller writes one
  if ((files > 8)); then
    tar -C "$OUT" -cf "$OUT/benchmarks.tar" benchmarks && rm -rf "$OUT/benchmarks"
    say "more than 8 files: the plots are in benchmarks.tar"
  fi
fi
say "results in $OUT:"
find "$OUT" -type f | sort
if [[ -f "$OUT/BENCHMARKS.md" ]]; then
  echo "----- $OUT/BENCHMARKS.md"
  cat "$OUT/BENCHMARKS.md"
fi
say "finished, exit $status"
exit "$status"
