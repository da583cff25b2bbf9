"""``seg2track simulate-detections``: noisy TrackR-CNN detections from KITTI MOTS ground truth.

``add_parser(subparsers)`` builds the subcommand's parser; ``run(args)`` reads the ground
truth, simulates and writes the detections. Errors are ``DatasetError`` subclasses for
the command line to report; ``run`` prints only the output path.
"""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

from seg2track_ros.argtypes import positive_int
from seg2track_ros.datasets.simulate import NoiseConfig, simulate_file
from seg2track_ros.errors import make_parent_folder

NAME = "simulate-detections"

_DEFAULTS = {field.name: field.default for field in fields(NoiseConfig)}


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        NAME,
        help="simulate noisy TrackR-CNN detections from KITTI MOTS ground truth",
        description=(
            "Turn KITTI MOTS ground truth into TrackR-CNN detections (frame x0 y0 x1 y1"
            " score class_id img_height img_width rle) with seeded noise: missed objects,"
            " eroded or dilated masks, jittered boxes, false positives and Beta-distributed"
            " scores. Ignore regions never become detections. The same seed and options"
            " always write the same file. The noise model is documented in"
            " seg2track_ros/datasets/simulate.py."
        ),
    )
    parser.add_argument(
        "--gt", type=Path, required=True, metavar="FILE", help="KITTI MOTS ground-truth file"
    )
    parser.add_argument(
        "--out", type=Path, required=True, metavar="FILE", help="detections file to write"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed; same seed, same file (default: 0)"
    )
    parser.add_argument(
        "--miss-rate",
        type=float,
        default=_DEFAULTS["miss_rate"],
        metavar="P",
        help="probability that an object goes undetected on a frame, in [0, 1]"
        " (default: %(default)s)",
    )
    parser.add_argument(
        "--jitter",
        type=float,
        default=_DEFAULTS["box_jitter"],
        metavar="FRACTION",
        help="standard deviation of each box edge's Gaussian shift, as a fraction of the"
        " box's width or height (default: %(default)s)",
    )
    parser.add_argument(
        "--false-positives",
        type=float,
        default=_DEFAULTS["false_positives_per_frame"],
        metavar="RATE",
        help="mean number of false detections per frame, Poisson distributed; each copies"
        " the size and class of a random ground-truth object (default: %(default)s)",
    )
    parser.add_argument(
        "--erode-dilate",
        type=int,
        default=_DEFAULTS["mask_radius"],
        metavar="R",
        help="masks are eroded or dilated by a random integer radius in [-R, R];"
        " 0 keeps them exact (default: %(default)s)",
    )
    parser.add_argument(
        "--tp-score-beta",
        type=float,
        nargs=2,
        default=_DEFAULTS["true_positive_score_beta"],
        metavar=("A", "B"),
        help="Beta(A, B) for true detections' scores, mean A / (A + B)"
        " (default: %(default)s, mean 0.85)",
    )
    parser.add_argument(
        "--fp-score-beta",
        type=float,
        nargs=2,
        default=_DEFAULTS["false_positive_score_beta"],
        metavar=("A", "B"),
        help="Beta(A, B) for false detections' scores (default: %(default)s, mean 0.4)",
    )
    parser.add_argument(
        "--frames",
        type=positive_int,
        default=None,
        metavar="N",
        help="frames to simulate, when the sequence runs past its last annotated frame"
        " (default: up to the last frame in --gt)",
    )
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    config = NoiseConfig(
        miss_rate=args.miss_rate,
        box_jitter=args.jitter,
        false_positives_per_frame=args.false_positives,
        true_positive_score_beta=tuple(args.tp_score_beta),
        false_positive_score_beta=tuple(args.fp_score_beta),
        mask_radius=args.erode_dilate,
    )
    make_parent_folder(args.out, "detections")
    simulate_file(args.gt, args.out, config, args.seed, frame_count=args.frames)
    print(args.out)
    return 0
