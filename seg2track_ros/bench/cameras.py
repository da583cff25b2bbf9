"""Several cameras: one tracker_node serving N cameras vs N tracker_nodes, one camera each.

Both layouts run the installed tracker_node executable (lockstep mode, SAM 2 with random
weights, the same parameters) and get the same frames: every camera gets the same
synthetic image with N objects as boxes on the first warm-up frame (the steady-state
thresholds of the engine benchmark keep exactly those tracks alive). The driver is
lockstep too: each tick it publishes one frame on every camera, then waits until every
camera's `tracks` answered, so every frame is tracked and both layouts do the same work.

Measured per layout and camera count: total frames/s over all cameras, the resident
memory of the node processes (/proc: VmRSS after the measured frames and the VmHWM
peak, summed over the nodes), device memory on a GPU (the nodes' own /diagnostics
`device_memory_mb`, torch's allocated memory, and nvidia-smi's per-process figure with
the CUDA context where it can see the processes) and the latency from an image's publish
to its `tracks` message, per camera. For one node serving several cameras, its
/diagnostics `cameras_per_tick` says how many cameras shared each engine call.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field

import numpy as np

from seg2track_ros.bench.engine import FRAME_SIZE, grid_boxes
from seg2track_ros.bench.latency import _steady_state_overrides, frame_messages

ONE_NODE = "one node"
NODE_PER_CAMERA = "one node per camera"
# At one camera the two layouts are the same node: it is measured once.
SAME_NODE = "one node (both layouts)"
# Lockstep: every camera's frame of a tick comes, so the one node may wait for them all
# (config/kitti_stereo.yaml sets the same for replay); the 10 ms default is for live
# cameras, where a wait is latency.
CAMERAS_GATHER_WINDOW_S = 0.1


class CamerasBenchError(RuntimeError):
    """The several-cameras benchmark could not measure what it set out to."""


@dataclass
class CamerasResult:
    layout: str  # ONE_NODE, NODE_PER_CAMERA or SAME_NODE
    cameras: int
    objects: int  # per camera
    warmup: int  # frames per camera before the measured ones
    frames: int  # measured frames per camera
    wall_s: float  # the measured ticks, first publish to last answer
    latencies_ms: dict[str, list[float]]  # camera -> measured frames' latencies
    tracks_held: dict[str, int]  # camera -> fewest tracks in a measured frame's output
    processed: dict[str, int]  # camera -> frames_processed in the node's /diagnostics
    rss_bytes: list[int]  # per node process: VmRSS after the measured frames
    peak_rss_bytes: list[int]  # per node process: VmHWM
    device_memory_bytes: list[int] | None = None  # per node: /diagnostics device_memory_mb
    gpu_process_bytes: list[int] | None = None  # per node: nvidia-smi used_memory
    device: str = "cpu"
    node_pids: list[int] = field(default_factory=list)
    frame_size: tuple[int, int] = FRAME_SIZE  # (height, width) of every camera's frames
    # One node for several cameras: its /diagnostics cameras_per_tick at the end (the
    # mean number of cameras per engine call over its last 100 ticks); else None.
    cameras_per_tick: float | None = None

    @property
    def nodes(self) -> int:
        return len(self.rss_bytes)

    @property
    def sent_per_camera(self) -> int:
        return self.warmup + self.frames

    @property
    def frames_per_s(self) -> float:
        return self.cameras * self.frames / self.wall_s if self.wall_s > 0 else float("nan")

    def p95_ms(self, camera: str) -> float:
        values = self.latencies_ms.get(camera, [])
        return float(np.percentile(values, 95)) if values else float("nan")


def camera_names(count: int) -> list[str]:
    return [f"cam{index}" for index in range(count)]


def process_memory(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of process `pid` in bytes, from /proc."""
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) * 1024
    if "VmRSS" not in values:
        raise CamerasBenchError(f"/proc/{pid}/status has no VmRSS (not a running process?)")
    return values["VmRSS"], values.get("VmHWM", values["VmRSS"])


def gpu_process_memory(pids: list[int]) -> list[int] | None:
    """Each pid's GPU memory (bytes, CUDA context included) from nvidia-smi; None when
    there is no nvidia-smi or it does not list every pid (e.g. another PID namespace)."""
    executable = shutil.which("nvidia-smi")
    if executable is None:
        return None
    try:
        out = subprocess.run(
            [
                executable,
                "--query-compute-apps=pid,used_memory",
                "--format=csv,noheader,nounits",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    used: dict[int, int] = {}
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
            used[int(parts[0])] = used.get(int(parts[0]), 0) + int(parts[1]) * 2**20
    if not all(pid in used for pid in pids):
        return None
    return [used[pid] for pid in pids]


def measure_cameras(
    layout: str,
    cameras: int,
    objects: int,
    frames: int,
    warmup: int,
    model: str,
    image_size: int,
    device: str,
    frame_size: tuple[int, int] = FRAME_SIZE,
    diagnostics_timeout_s: float = 30.0,
) -> CamerasResult:
    """One layout at `cameras` cameras: start the node(s), warm up, track `frames`
    lockstep ticks of every camera, read memory, stop the node(s)."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from seg2track_msgs.msg import TrackedObjectArray
    from sensor_msgs.msg import Image
    from vision_msgs.msg import Detection2DArray

    from seg2track_ros.bags.replay import (
        ReplayOptions,
        spin_nodes_until,
        start_tracker_node,
        stop_node,
    )

    if layout not in (ONE_NODE, NODE_PER_CAMERA, SAME_NODE):
        raise CamerasBenchError(f"unknown layout {layout!r}")
    if warmup < 1:
        raise CamerasBenchError("warmup must be >= 1: the objects are prompted on its first frame")
    names = camera_names(cameras)
    tag = f"s2t_bench_cams_{os.getpid()}_{cameras}_{'one' if layout != NODE_PER_CAMERA else 'n'}"
    # (namespace, node name, its cameras) per node process
    groups = (
        [(f"{tag}_{index}", f"tracker_{tag}_{index}", [name]) for index, name in enumerate(names)]
        if layout == NODE_PER_CAMERA
        else [(tag, f"tracker_{tag}", names)]
    )
    base_overrides = {
        "model": model,
        "checkpoint": "random",
        "device": device,
        "image_size": image_size,
        "diagnostics_period": 0.5,
        # Every image has its detections; on a loaded machine the first message over a
        # new DDS connection can take longer than the default 0.2 s, and an image tracked
        # without its prompts would hold no tracks. Detections also go out first.
        "sync_timeout": 30.0,
        "camera_gather_window": CAMERAS_GATHER_WINDOW_S,
        **_steady_state_overrides(),
    }
    started = []
    try:
        for namespace, node_name, group in groups:
            options = ReplayOptions(lockstep=True, overrides={**base_overrides, "cameras": group})
            started.append(start_tracker_node(namespace, options, node_name=node_name))
    except BaseException:
        for process, log in started:
            stop_node(process)
            log.finish(succeeded=False)
        raise

    context = Context()
    node = executor = None
    measured = False
    try:
        rclpy.init(context=context)
        node = Node(f"seg2track_bench_cameras_{os.getpid()}", context=context)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        arrivals: dict[tuple[str, int], float] = {}
        held: dict[tuple[str, int], int] = {}
        processed: dict[str, int] = {}
        device_mb: dict[str, float] = {}  # node name -> highest device_memory_mb seen
        per_tick: dict[str, float] = {}  # node name -> latest cameras_per_tick
        statuses = {
            f"{node_name}: seg2track {camera}": (node_name, camera)
            for _ns, node_name, group in groups
            for camera in group
        }

        def on_diagnostics(msg: DiagnosticArray) -> None:
            for status in msg.status:
                owner = statuses.get(status.name)
                if owner is None:
                    continue
                node_name, camera = owner
                values = {kv.key: kv.value for kv in status.values}
                if "frames_processed" in values:
                    processed[camera] = int(values["frames_processed"])
                if "cameras_per_tick" in values:
                    per_tick[node_name] = float(values["cameras_per_tick"])
                if "device_memory_mb" in values:
                    value = float(values["device_memory_mb"])
                    device_mb[node_name] = max(device_mb.get(node_name, 0.0), value)

        node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, qos)
        publishers = {}
        for namespace, _node_name, group in groups:
            for camera in group:

                def on_tracks(msg: TrackedObjectArray, camera: str = camera) -> None:
                    stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
                    arrivals[camera, stamp] = time.time()
                    held[camera, stamp] = len(msg.objects)

                prefix = f"/{namespace}/{camera}"
                node.create_subscription(TrackedObjectArray, f"{prefix}/tracks", on_tracks, qos)
                publishers[camera] = (
                    node.create_publisher(Image, f"{prefix}/image", qos),
                    node.create_publisher(Detection2DArray, f"{prefix}/detections", qos),
                )
        height, width = frame_size
        pixels = np.random.default_rng(0).integers(0, 255, (height, width, 3), np.uint8).tobytes()
        boxes = grid_boxes(objects, height, width)

        def spin_until(condition, timeout: float, what: str, raise_on_timeout: bool = True) -> bool:
            return spin_nodes_until(
                executor,
                started,
                condition,
                timeout,
                what,
                tick=0.002,
                raise_on_timeout=raise_on_timeout,
            )

        def tick(with_boxes: bool) -> list[tuple[str, int]]:
            sent = []
            for camera in names:
                images, detections = publishers[camera]
                stamp = time.time_ns()
                image, array = frame_messages(
                    pixels, frame_size, boxes if with_boxes else None, stamp, camera
                )
                detections.publish(array)
                images.publish(image)
                sent.append((camera, stamp))
            spin_until(lambda: all(key in arrivals for key in sent), 300, "waiting for tracks")
            return sent

        spin_until(
            lambda: all(
                images.get_subscription_count() > 0 and detections.get_subscription_count() > 0
                for images, detections in publishers.values()
            ),
            300 + 60 * len(groups),
            "waiting for tracker_node to start",
        )
        for index in range(warmup):  # the objects are prompted on the first frame
            tick(with_boxes=index == 0)
        start = time.monotonic()
        sent = [key for _ in range(frames) for key in tick(with_boxes=False)]
        wall_s = time.monotonic() - start
        pids = [process.pid for process, _log in started]
        memory = [process_memory(pid) for pid in pids]
        gpu = gpu_process_memory(pids) if device.startswith("cuda") else None
        total = warmup + frames
        # After a timeout what the nodes reported is kept: the table shows any shortfall.
        spin_until(
            lambda: (
                all(processed.get(c) == total for c in names)
                and (not device.startswith("cuda") or len(device_mb) == len(groups))
            ),
            diagnostics_timeout_s,
            "waiting for /diagnostics to count every frame",
            raise_on_timeout=False,
        )
        latencies = {camera: [] for camera in names}
        tracks_held = {camera: objects for camera in names}
        for camera, stamp in sent:
            latencies[camera].append((arrivals[camera, stamp] * 1e9 - stamp) / 1e6)
            tracks_held[camera] = min(tracks_held[camera], held[camera, stamp])
        if min(tracks_held.values()) != objects:
            logs = ", ".join(str(log.path) for _process, log in started)
            raise CamerasBenchError(
                f"the nodes held {tracks_held} tracks per camera, not {objects}: the prompts"
                f" of the first frame were lost or tracks ended (tracker_node logs: {logs})"
            )
        measured = True
    finally:
        if executor is not None:
            executor.shutdown()
        if node is not None:
            node.destroy_node()
        context.try_shutdown()
        for process, log in started:
            stop_node(process)
            log.finish(succeeded=measured)
    node_names = [node_name for _ns, node_name, _group in groups]
    return CamerasResult(
        layout=layout,
        cameras=cameras,
        objects=objects,
        warmup=warmup,
        frames=frames,
        wall_s=wall_s,
        latencies_ms=latencies,
        tracks_held=tracks_held,
        processed={camera: processed.get(camera, 0) for camera in names},
        rss_bytes=[rss for rss, _peak in memory],
        peak_rss_bytes=[peak for _rss, peak in memory],
        device_memory_bytes=(
            [int(device_mb[n] * 2**20) for n in node_names]
            if all(n in device_mb for n in node_names)
            else None
        ),
        gpu_process_bytes=gpu,
        device=device,
        node_pids=pids,
        frame_size=frame_size,
        cameras_per_tick=per_tick.get(node_names[0]) if layout == ONE_NODE else None,
    )


def measure_cameras_comparison(
    counts: list[int],
    objects: int,
    frames: int,
    warmup: int,
    model: str,
    image_size: int,
    device: str,
    frame_size: tuple[int, int] = FRAME_SIZE,
    progress=print,
) -> list[CamerasResult]:
    """Both layouts for each camera count (one run at 1 camera: the same node)."""
    results = []
    for count in sorted(set(counts)):
        layouts = [SAME_NODE] if count == 1 else [ONE_NODE, NODE_PER_CAMERA]
        for layout in layouts:
            result = measure_cameras(
                layout, count, objects, frames, warmup, model, image_size, device, frame_size
            )
            results.append(result)
            progress(
                f"  {count} cameras, {layout}: {result.frames_per_s:.2f} frames/s,"
                f" RSS {sum(result.rss_bytes) / 2**20:.0f} MiB"
            )
    return results
