"""``seg2track evaluate``: score result files with trackeval and write the report.

``add_parser(subparsers)`` builds the subcommand and sets ``handler`` to ``run``; the
``seg2track`` command turns ``EvaluationError`` into a one-line message and exit status 1.
trackeval and matplotlib are imported only when the command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from seg2track_ros.evaluation.evaluate import BENCHMARKS, evaluate

NAME = "evaluate"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        NAME,
        help="score tracking results against KITTI MOTS or MOTS20 ground truth (trackeval)",
        description=(
            "Score <seq>.txt result files (one object per line: frame object_id class_id"
            " img_height img_width rle) against ground truth in the same format with"
            " trackeval: HOTA, DetA, AssA, sMOTSA, MOTSA, IDF1 and IDSW per class, per"
            " sequence and combined. Prints the table; with --out also writes metrics.json,"
            " report.md, hota_alpha.png and per_sequence.png."
        ),
    )
    parser.add_argument(
        "--gt",
        type=Path,
        required=True,
        metavar="DIR",
        help=(
            "ground-truth folder with <seq>.txt (KITTI MOTS: also instances_txt/<seq>.txt;"
            " MOTS20: also <seq>/gt/gt.txt with an optional <seq>/seqinfo.ini)"
        ),
    )
    parser.add_argument(
        "--results",
        type=Path,
        required=True,
        metavar="DIR",
        help="folder with the tracker's <seq>.txt files, in the ground truth's line format",
    )
    parser.add_argument(
        "--seqs",
        nargs="+",
        required=True,
        metavar="SEQ",
        help="sequences to evaluate, e.g. 0002 0006 (each needs a file in both folders)",
    )
    parser.add_argument(
        "--benchmark",
        choices=list(BENCHMARKS),
        default="kitti_mots",
        help=(
            "kitti_mots: frames from 0, classes car and pedestrian; mots20: frames from 1,"
            " class pedestrian (default: kitti_mots)"
        ),
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="write metrics.json, report.md and the plots into DIR (created if missing)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="let trackeval print its configuration and its own result tables",
    )
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from seg2track_ros.evaluation.report import ReportFiles, format_table

    result = evaluate(
        args.gt,
        args.results,
        args.seqs,
        benchmark=args.benchmark,
        out_dir=args.out,
        verbose=args.verbose,
        command=getattr(args, "command_line", None),
    )
    print(format_table(result))
    if args.out is None:
        print("\nno report written (add --out DIR for metrics.json, report.md and plots)")
        return 0
    files = ReportFiles.in_dir(args.out)
    print()
    print(f"report:  {files.report_md}")
    print(f"metrics: {files.metrics_json}")
    print(f"plots:   {files.hota_alpha_png}, {files.per_sequence_png}")
    return 0
