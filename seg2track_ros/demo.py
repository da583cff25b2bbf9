"""`seg2track demo` (`make demo`): the whole evaluation path on a bundled sequence.

1. a 60-frame KITTI-sized sequence drawn by this project, with exact ground truth
   (seg2track_ros.datasets.synthetic);
2. detections simulated from that ground truth (TrackR-CNN format, seeded noise);
3. `kitti-to-bag`: images + detections -> rosbag2;
4. `replay --lockstep`: the bag through a real tracker_node over DDS (SAM 2) -> results;
5. the same detections through the detection-masks segmenter (no SAM 2) -> results;
6. `evaluate`: HOTA / sMOTSA / IDF1 ... of both, with trackeval;
7. `render`: an MP4 of the SAM 2 results.

With the tiny SAM 2.1 checkpoint in the default location it is used; without one SAM 2
runs with random weights, and the banner says its masks and scores are meaningless.
The detection-masks numbers are real either way (the track manager on simulated
detections of real object motion).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SEQUENCE = "0000"
DEMO_MODEL = "tiny"

BANNER = """
################################################################################
#  NO SAM 2 CHECKPOINT: SAM 2 ran with RANDOM WEIGHTS. Its masks, scores and   #
#  metrics above are MEANINGLESS (they show the pipeline works, nothing more). #
#  Get real weights, then run `make demo` again:                               #
#      source env.sh && seg2track download-checkpoints --model tiny            #
################################################################################
"""


@dataclass(frozen=True)
class DemoOutputs:
    root: Path
    images: Path
    ground_truth: Path
    detections: Path
    bag: Path
    sam2_results: Path
    detection_mask_results: Path
    sam2_report: Path
    detection_mask_report: Path
    video: Path
    random_weights: bool


def demo_parameters() -> tuple[dict, bool]:
    """tracker_node overrides for the demo and whether SAM 2 has random weights."""
    from seg2track_ros.engine.checkpoints import resolve_checkpoint

    checkpoint = resolve_checkpoint(DEMO_MODEL, "")
    if checkpoint is not None and checkpoint.is_file():
        # Real weights; the image size keeps the CPU demo within minutes.
        return {"model": DEMO_MODEL, "checkpoint": str(checkpoint), "image_size": 512}, False
    return {"model": DEMO_MODEL, "checkpoint": "random", "image_size": 256}, True


def run_demo(out: Path, say: Callable[[str], None] = print, frames: int = 60) -> DemoOutputs:
    from seg2track_ros.bags.replay import ReplayOptions, replay_bag
    from seg2track_ros.bags.writer import BagFrame, write_bag
    from seg2track_ros.datasets import read_detections
    from seg2track_ros.datasets.simulate import simulate_file
    from seg2track_ros.datasets.synthetic import make_sequence
    from seg2track_ros.evaluation.evaluate import evaluate
    from seg2track_ros.evaluation.report import format_table
    from seg2track_ros.params import config_from_params_files
    from seg2track_ros.pipeline import list_images, load_rgb, run_sequence
    from seg2track_ros.render import render_video, tracks_from_results
    from seg2track_ros.results import ResultsRecorder
    from seg2track_ros.ros.results_writer import rows_from_msg

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty; remove it or choose another --out")
    started = time.monotonic()
    overrides, random_weights = demo_parameters()

    say(f"[1/7] drawing a {frames}-frame KITTI-sized sequence with ground truth")
    sequence = make_sequence(out / "sequence", frames=frames)
    gt_dir = sequence.ground_truth.parent

    say("[2/7] simulating detections from the ground truth (seed 0)")
    detections = out / "detections" / f"{SEQUENCE}.txt"
    detections.parent.mkdir(parents=True, exist_ok=True)
    simulate_file(sequence.ground_truth, detections, seed=0)
    sequence_detections = read_detections(detections, "trackrcnn")

    say("[3/7] kitti-to-bag")
    images = list_images(sequence.images)
    bag = out / "bag"
    write_bag(
        bag,
        (
            BagFrame(
                1_000_000_000 + i * 100_000_000,
                load_rgb(path)[..., ::-1],
                sequence_detections.detections_at(i),
            )
            for i, path in enumerate(images)
        ),
    )

    weights = "RANDOM weights" if random_weights else overrides["checkpoint"]
    say(f"[4/7] replay --lockstep through tracker_node (SAM 2.1 {DEMO_MODEL}, {weights})")
    sam2_results = out / "results" / "sam2" / f"{SEQUENCE}.txt"
    with ResultsRecorder(sam2_results) as recorder:
        replay_bag(
            bag,
            ReplayOptions(lockstep=True, overrides=overrides),
            lambda frame, msg, raw: recorder.add(frame, rows_from_msg(msg)),
        )

    say("[5/7] the same detections with the detection-masks segmenter (no SAM 2)")
    dm_results = out / "results" / "detection_masks" / f"{SEQUENCE}.txt"
    config, _ = config_from_params_files([], {})
    run_sequence(
        config, sequence_detections, dm_results, images=images, segmenter="detection-masks"
    )

    say("[6/7] evaluating with trackeval")
    reports = {}
    for name, results in (("sam2", sam2_results), ("detection_masks", dm_results)):
        report_dir = out / "evaluation" / name
        result = evaluate(gt_dir, results.parent, [SEQUENCE], "kitti_mots", report_dir)
        reports[name] = (report_dir / "report.md", format_table(result))

    say("[7/7] rendering the SAM 2 results")
    video = out / "sam2_tracks.mp4"
    render_video(images, tracks_from_results(sam2_results), video)

    outputs = DemoOutputs(
        root=out,
        images=sequence.images,
        ground_truth=sequence.ground_truth,
        detections=detections,
        bag=bag,
        sam2_results=sam2_results,
        detection_mask_results=dm_results,
        sam2_report=reports["sam2"][0],
        detection_mask_report=reports["detection_masks"][0],
        video=video,
        random_weights=random_weights,
    )
    say("")
    say("Detection-masks segmenter (track manager on simulated detections):")
    say(reports["detection_masks"][1])
    say("")
    say(f"SAM 2.1 {DEMO_MODEL} through tracker_node:")
    say(reports["sam2"][1])
    if random_weights:
        say(BANNER)
    say(f"done in {time.monotonic() - started:.0f} s. Outputs:")
    for label, path in (
        ("images", outputs.images),
        ("ground truth", outputs.ground_truth),
        ("detections", outputs.detections),
        ("bag", outputs.bag),
        ("SAM 2 results", outputs.sam2_results),
        ("detection-masks results", outputs.detection_mask_results),
        ("SAM 2 report", outputs.sam2_report),
        ("detection-masks report", outputs.detection_mask_report),
        ("video", outputs.video),
    ):
        say(f"  {label:25s} {path}")
    return outputs
