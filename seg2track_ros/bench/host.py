"""Host overhead: the per-frame time a GPU cannot hide, measured on any machine.

SAM 2 runs at a tiny input (``image_size`` 64) so its own compute is small, while the
frames keep their real size (KITTI 375x1242, 1080p), so everything that scales with
pixels or objects outside SAM 2 is timed: mask geometry for association, track
management, the label image and boxes, the copy to the host, and the node's output path
(TrackedObjectArray with RLE, Detection2DArray, the mono16 label image). The probe
(host_probe.py) runs in a subprocess per tree: this one and, with ``before``, a git
worktree of an older commit, in the same run and with the same settings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seg2track_ros.bench.engine import STEADY_STATE

PROBE = Path(__file__).with_name("host_probe.py")
REPO_ROOT = Path(__file__).resolve().parents[2]
FRAME_SIZES = ((375, 1242), (1080, 1920))
# Phases that are host logic in this tree; the rest of the step is SAM 2 and the
# device-side mask work (on a CPU run that device is the CPU).
HOST_PHASES = ("manage", "output")
# Everything outside SAM 2 itself: what the "manage + output + RLE" measured.
OUTSIDE_SAM2 = ("geometry", "manage", "labels", "output")


class HostBenchError(RuntimeError):
    """The probe could not run (bad git ref, probe failure)."""


@dataclass
class HostResult:
    tree: str  # "before (<ref>)" or "this tree"
    frame_size: tuple[int, int]
    objects: int
    step_ms: list[float]
    output_ms: list[float]  # the node's output path (messages, label image, RLE)
    phases_ms: dict[str, list[float]] = field(default_factory=dict)

    def median(self, phase: str) -> float:
        values = self.phases_ms.get(phase)
        return float(np.median(values)) if values else 0.0

    def outside_sam2_ms(self) -> float:
        """Median per frame of every phase outside SAM 2 plus the node's output path."""
        phases = [p for p in OUTSIDE_SAM2 if p in self.phases_ms]
        per_frame = np.sum([self.phases_ms[p] for p in phases], axis=0) + self.output_ms
        return float(np.median(per_frame))

    def host_ms(self) -> float:
        """Median per frame of the host-only phases plus the node's output path."""
        per_frame = np.sum([self.phases_ms[p] for p in HOST_PHASES], axis=0) + self.output_ms
        return float(np.median(per_frame))


def _steady_state() -> dict:
    return {
        name: getattr(STEADY_STATE, name)
        for name in (
            "removal_quality",
            "lost_logit",
            "reliable_logit",
            "reinforcement_quality",
            "detection_probability",
            "survival_probability",
        )
    }


def _run_probe(settings: dict, pythonpath_first: Path | None, tree: str) -> list[HostResult]:
    env = dict(os.environ)
    if pythonpath_first is not None:
        env["PYTHONPATH"] = f"{pythonpath_first}{os.pathsep}{env.get('PYTHONPATH', '')}"
    done = subprocess.run(
        [sys.executable, str(PROBE), json.dumps(settings)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("HOST_PROBE ")]
    if done.returncode != 0 or not lines:
        raise HostBenchError(f"host probe for {tree} failed:\n{done.stderr[-3000:]}")
    payload = json.loads(lines[-1].split(" ", 1)[1])
    results = []
    for r in payload["results"]:
        if r["held"] != [r["objects"], r["objects"]]:
            raise HostBenchError(f"{tree}: held {r['held']} tracks, not {r['objects']}")
        results.append(
            HostResult(
                tree,
                tuple(r["frame_size"]),
                r["objects"],
                r["step_ms"],
                r["output_ms"],
                r["phases_ms"],
            )
        )
    return results


def _worktree(ref: str, folder: Path) -> Path:
    """A detached git worktree of ``ref`` of this repository in ``folder``."""
    target = folder / "before"
    done = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "worktree", "add", "--detach", str(target), ref],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise HostBenchError(f"cannot check out '{ref}' for the comparison: {done.stderr}")
    return target


def measure_host_overhead(
    objects: list[int],
    frames: int,
    warmup: int,
    model: str,
    image_size: int,
    device: str,
    before: str | None = None,
    frame_sizes=FRAME_SIZES,
    progress=print,
) -> list[HostResult]:
    """Host-overhead results for this tree and, with ``before`` (a git ref), for that
    commit, measured one after the other in this run."""
    settings = {
        "model": model,
        "device": device,
        "image_size": image_size,
        "frame_sizes": [list(s) for s in frame_sizes],
        "objects": objects,
        "warmup": warmup,
        "frames": frames,
        "steady_state": _steady_state(),
    }
    results = []
    with tempfile.TemporaryDirectory(prefix="seg2track_host_") as work:
        if before is not None:
            progress(f"  host overhead: {before} (git worktree)")
            tree = _worktree(before, Path(work))
            try:
                results += _run_probe(settings, tree, f"before ({before})")
            finally:
                subprocess.run(
                    ["git", "-C", str(REPO_ROOT), "worktree", "remove", "--force", str(tree)],
                    capture_output=True,
                    check=False,
                )
        progress("  host overhead: this tree")
        results += _run_probe(settings, REPO_ROOT, "this tree")
    return results


def host_table(results: list[HostResult]) -> str:
    """Per frame size and object count: every tree's medians side by side."""
    trees = list(dict.fromkeys(r.tree for r in results))
    by_key = {(r.tree, r.frame_size, r.objects): r for r in results}
    lines = []
    for size in dict.fromkeys(r.frame_size for r in results):
        lines += [
            f"**{size[1]}x{size[0]} frames**",
            "",
            "| objects | tree | step total | outside SAM 2: mask work + manage + output"
            " + node output | of which host only: manage + output + node output |"
            " phases (median ms) | target (5 + 0.25 N) |",
            "| ---: | --- | ---: | ---: | ---: | --- | ---: |",
        ]
        for count in dict.fromkeys(r.objects for r in results if r.frame_size == size):
            for tree in trees:
                r = by_key.get((tree, size, count))
                if r is None:
                    continue
                phases = " / ".join(f"{p} {r.median(p):.1f}" for p in r.phases_ms if p != "total")
                # Older trees did the mask work inside manage/output: no host-only split.
                host = f"{r.host_ms():.1f}" if "geometry" in r.phases_ms else "n/a"
                lines.append(
                    f"| {count} | {tree} | {np.median(r.step_ms):.1f} |"
                    f" {r.outside_sam2_ms():.1f} | {host} |"
                    f" {phases} / node output {np.median(r.output_ms):.1f} |"
                    f" {5 + 0.25 * count:.1f} |"
                )
        lines.append("")
    if len(trees) == 2:
        lines.append("Ratio before / this tree of the time outside SAM 2 (medians):")
        lines.append("")
        for size in dict.fromkeys(r.frame_size for r in results):
            ratios = []
            for count in dict.fromkeys(r.objects for r in results if r.frame_size == size):
                old, new = by_key.get((trees[0], size, count)), by_key.get((trees[1], size, count))
                if old and new:
                    ratios.append(f"{count}: {old.outside_sam2_ms() / new.outside_sam2_ms():.1f}x")
            lines.append(f"- {size[1]}x{size[0]}: " + ", ".join(ratios))
    return "\n".join(lines).rstrip()
