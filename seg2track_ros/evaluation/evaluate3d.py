"""`seg2track evaluate-3d`: tracked 3-D centres against KITTI tracking labels.

Per frame, the tracks' 2-D boxes (their masks' boxes) are matched one-to-one to the
labelled objects' boxes (Hungarian on 1 - IoU, pairs with IoU >= ``min_iou``), so a
track's 3-D estimate is judged against the object it covers in the image, whatever its
3-D error. For each matched pair with a 3-D estimate the position error is the distance
between the estimate and the centre of the labelled 3-D box (``location`` is its bottom
centre: centre = location - (0, height / 2, 0)), both in image_02's optical frame (the
labels are in rectified camera-0 coordinates: with the calibration the offset t of P2 is
added; without it t is taken as 0, about 6 cm along x on KITTI).

Reported by class and by distance band of the labelled centre (0-10, 10-20, 20-40,
40+ m): matched pairs, the fraction with a 3-D estimate, mean and median error (m), and
the median error relative to the range; and over the whole run, the fraction of matched
tracks (ids) that ever had a 3-D estimate. The estimate is the centre of the visible
surface (README, "3-D tracks"), so for a car seen from behind about half its length
(~2 m) is the expected error at any range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seg2track_ros.datasets.errors import DatasetError
from seg2track_ros.datasets.tracks3d import read_kitti_labels, read_tracks3d

DISTANCE_BANDS = ((0.0, 10.0), (10.0, 20.0), (20.0, 40.0), (40.0, math.inf))


def band_name(band: tuple[float, float]) -> str:
    low, high = band
    return f"{low:g}+ m" if math.isinf(high) else f"{low:g}-{high:g} m"


@dataclass(frozen=True)
class MatchedPair:
    sequence: str
    frame: int
    class_id: str  # the label's
    track_id: int
    range_m: float  # distance of the labelled centre from the camera
    error_m: float  # NaN without a 3-D estimate


@dataclass
class Evaluation3D:
    pairs: list[MatchedPair] = field(default_factory=list)
    labels: int = 0  # labelled objects (frames x objects), DontCare excluded
    tracks_matched: int = 0  # (sequence, track id) matched at least once
    tracks_with_3d: int = 0  # of those, with a 3-D estimate on a matched frame

    def rows(self) -> list[dict]:
        """One summary row per class and band, then per class over all bands."""
        out = []
        classes = sorted({p.class_id for p in self.pairs})
        for class_id in [*classes, "all"]:
            pairs = [p for p in self.pairs if class_id in ("all", p.class_id)]
            for band in [*DISTANCE_BANDS, None]:
                chosen = [p for p in pairs if band is None or band[0] <= p.range_m < band[1]]
                if not chosen:
                    continue
                errors = np.array([p.error_m for p in chosen if np.isfinite(p.error_m)])
                ranges = np.array([p.range_m for p in chosen if np.isfinite(p.error_m)])
                out.append(
                    {
                        "class": class_id,
                        "band": "all" if band is None else band_name(band),
                        "matched": len(chosen),
                        "with_3d": len(errors),
                        "fraction_3d": len(errors) / len(chosen),
                        "mean_m": float(errors.mean()) if len(errors) else math.nan,
                        "median_m": float(np.median(errors)) if len(errors) else math.nan,
                        "median_relative": (
                            float(np.median(errors / np.maximum(ranges, 1e-9)))
                            if len(errors)
                            else math.nan
                        ),
                    }
                )
        return out


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of boxes a (N, 4) and b (M, 4), xyxy."""
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def evaluate_sequence(
    labels_path: Path,
    results_path: Path,
    sequence: str,
    offset: np.ndarray | None = None,
    min_iou: float = 0.5,
    evaluation: Evaluation3D | None = None,
) -> Evaluation3D:
    """Add one sequence's matched pairs to ``evaluation`` (a new one when None)."""
    from scipy.optimize import linear_sum_assignment

    evaluation = evaluation or Evaluation3D()
    offset = np.zeros(3) if offset is None else np.asarray(offset, dtype=np.float64)
    labels = read_kitti_labels(labels_path)
    rows = read_tracks3d(results_path)
    evaluation.labels += len(labels)
    by_frame_rows: dict[int, list] = {}
    for row in rows:
        by_frame_rows.setdefault(row.frame, []).append(row)
    by_frame_labels: dict[int, list] = {}
    for label in labels:
        by_frame_labels.setdefault(label.frame, []).append(label)
    matched_tracks: set[int] = set()
    tracks_3d: set[int] = set()
    for frame, frame_labels in sorted(by_frame_labels.items()):
        frame_rows = by_frame_rows.get(frame, [])
        if not frame_rows:
            continue
        iou = _iou(
            np.array([r.box for r in frame_rows], dtype=np.float64),
            np.array([lb.box for lb in frame_labels], dtype=np.float64),
        )
        rows_idx, labels_idx = linear_sum_assignment(1 - iou)
        for r, k in zip(rows_idx, labels_idx, strict=True):
            if iou[r, k] < min_iou:
                continue
            row, label = frame_rows[r], frame_labels[k]
            centre = label.centre + offset
            error = float(np.linalg.norm(row.position - centre)) if row.has_3d else math.nan
            matched_tracks.add(row.track_id)
            if row.has_3d:
                tracks_3d.add(row.track_id)
            evaluation.pairs.append(
                MatchedPair(
                    sequence,
                    frame,
                    label.class_id,
                    row.track_id,
                    float(np.linalg.norm(centre)),
                    error,
                )
            )
    evaluation.tracks_matched += len(matched_tracks)
    evaluation.tracks_with_3d += len(tracks_3d)
    return evaluation


def evaluate_3d(
    gt: Path,
    results: Path,
    sequences: list[str],
    calib: Path | None = None,
    min_iou: float = 0.5,
) -> Evaluation3D:
    """All sequences: labels ``gt/<seq>.txt``, 3-D tracks ``results/<seq>.txt``,
    calibration ``calib/<seq>.txt`` when ``calib`` is given."""
    from seg2track_ros.datasets.kitti_calib import read_kitti_calibration

    evaluation = Evaluation3D()
    for sequence in sequences:
        labels_path, results_path = Path(gt) / f"{sequence}.txt", Path(results) / f"{sequence}.txt"
        for path, what in ((labels_path, "labels"), (results_path, "3-D tracks")):
            if not path.is_file():
                raise DatasetError(f"no {what} file {path} for sequence {sequence}")
        offset = None
        if calib is not None:
            offset = read_kitti_calibration(Path(calib) / f"{sequence}.txt").rect_to_camera2
        evaluate_sequence(labels_path, results_path, sequence, offset, min_iou, evaluation)
    return evaluation


def _number(value: float, digits: int = 2) -> str:
    return "-" if not math.isfinite(value) else f"{value:.{digits}f}"


def write_report(evaluation: Evaluation3D, out: Path, command: str) -> Path:
    """``out/report_3d.md`` (the table), ``out/pairs_3d.csv`` (every matched pair) and
    ``out/error_vs_range.png`` (the plot); returns the report's path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = evaluation.rows()
    fraction = (
        evaluation.tracks_with_3d / evaluation.tracks_matched if evaluation.tracks_matched else 0
    )
    lines = [
        "# 3-D position error of tracked objects",
        "",
        f"Command: `{command}`",
        "",
        f"Labelled objects: {evaluation.labels}; matched track-frames: {len(evaluation.pairs)};"
        f" matched tracks: {evaluation.tracks_matched}, of which {evaluation.tracks_with_3d}"
        f" ({fraction:.1%}) had a 3-D estimate.",
        "",
        "| class | distance | matched | with 3-D | fraction | mean error (m) |"
        " median error (m) | median error / range |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['class']} | {r['band']} | {r['matched']} | {r['with_3d']} |"
            f" {r['fraction_3d']:.1%} | {_number(r['mean_m'])} | {_number(r['median_m'])} |"
            f" {_number(100 * r['median_relative'], 1)} % |"
        )
    report = out / "report_3d.md"
    report.write_text("\n".join(lines) + "\n")
    with (out / "pairs_3d.csv").open("w") as handle:
        handle.write("sequence,frame,class,track_id,range_m,error_m\n")
        for p in evaluation.pairs:
            handle.write(
                f"{p.sequence},{p.frame},{p.class_id},{p.track_id},{p.range_m:.3f},"
                f"{'nan' if not math.isfinite(p.error_m) else f'{p.error_m:.3f}'}\n"
            )
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for class_id in sorted({p.class_id for p in evaluation.pairs}):
        chosen = [
            p for p in evaluation.pairs if p.class_id == class_id and math.isfinite(p.error_m)
        ]
        axes.scatter(
            [p.range_m for p in chosen], [p.error_m for p in chosen], s=6, alpha=0.5, label=class_id
        )
    medians = [r for r in rows if r["class"] == "all" and r["band"] != "all"]
    for r in medians:
        band = next(b for b in DISTANCE_BANDS if band_name(b) == r["band"])
        high = band[1] if math.isfinite(band[1]) else band[0] + 20
        axes.hlines(r["median_m"], band[0], high, colors="black", linewidth=2)
    axes.set_xlabel("range of the labelled centre (m)")
    axes.set_ylabel("position error (m)")
    axes.set_title("3-D position error of matched tracks (black: median per band)")
    if evaluation.pairs:
        axes.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(out / "error_vs_range.png", dpi=100)
    plt.close(figure)
    return report


def add_parser(subparsers) -> None:
    """The `seg2track evaluate-3d` command."""
    parser = subparsers.add_parser(
        "evaluate-3d",
        help="score 3-D track files against KITTI tracking labels (label_02 location)",
        description=(
            "Match each frame's tracks to the labelled objects by 2-D box IoU and report the"
            " 3-D position error of the matched tracks by class and distance band, and the"
            " fraction of tracks with a 3-D estimate, with a plot (report_3d.md,"
            " pairs_3d.csv, error_vs_range.png in --out)."
        ),
    )
    parser.add_argument(
        "--gt", type=Path, required=True, help="KITTI tracking label_02 folder (NNNN.txt)"
    )
    parser.add_argument(
        "--results",
        type=Path,
        required=True,
        help="folder of 3-D track files NNNN.txt (`seg2track run --results-3d`)",
    )
    parser.add_argument("--seqs", nargs="+", required=True, help="sequence names, e.g. 0002")
    parser.add_argument(
        "--calib",
        type=Path,
        help="KITTI calib folder (NNNN.txt): labels are moved into image_02's frame (else"
        " the ~6 cm offset between camera 0 and camera 2 is ignored)",
    )
    parser.add_argument(
        "--min-iou", type=float, default=0.5, help="2-D box IoU a track-label pair needs"
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for the report")
    parser.set_defaults(handler=run)


def run(args) -> int:
    if not 0 < args.min_iou <= 1:
        raise DatasetError(f"--min-iou must be in (0, 1], got {args.min_iou}")
    evaluation = evaluate_3d(args.gt, args.results, args.seqs, args.calib, args.min_iou)
    command = getattr(args, "command_line", "seg2track evaluate-3d")
    report = write_report(evaluation, args.out, command)
    print(report.read_text(), end="")
    print(f"report: {report}")
    return 0
