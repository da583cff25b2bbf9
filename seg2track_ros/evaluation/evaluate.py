"""Score tracking results against KITTI MOTS or MOTS20 ground truth with trackeval.

Both folders hold one ``<seq>.txt`` per sequence, one object per line::

    frame object_id class_id img_height img_width rle

(KITTI MOTS ``instances_txt`` layout; frames count from 0 in KITTI MOTS and from 1 in
MOTS20; class 1 = car, 2 = pedestrian, 10 = ignore region). The numbers come from
trackeval's own ``KittiMOTS`` / ``MOTSChallenge`` datasets and its HOTA, CLEAR and
Identity metrics, so they match the official benchmark scripts. This module only builds
the folder layout trackeval expects (in a temporary directory, with symlinks), checks the
files first so that a bad line is reported by file and line number instead of as a
trackeval traceback (or, for RLE counts that do not fill the image, as an endless loop in
pycocotools), and turns trackeval's nested dictionaries into typed results.
"""

from __future__ import annotations

import configparser
import contextlib
import io
import math
import os
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from seg2track_ros.engine.masks import compressed_rle_runs

Benchmark = Literal["kitti_mots", "mots20"]

COMBINED = "COMBINED"
"""Row name of the scores over all evaluated sequences together."""

IGNORE_CLASS_ID = 10
_TRACKER_NAME = "seg2track"  # folder name of the results inside trackeval's layout


class EvaluationError(ValueError):
    """Inputs that cannot be evaluated; the message names the file (and line) to fix."""


@dataclass(frozen=True)
class BenchmarkSpec:
    """What differs between the two benchmarks that share the line format."""

    name: str
    first_frame: int
    classes: tuple[str, ...]
    trackeval_dataset: str


BENCHMARKS: dict[str, BenchmarkSpec] = {
    "kitti_mots": BenchmarkSpec("kitti_mots", 0, ("car", "pedestrian"), "KittiMOTS"),
    "mots20": BenchmarkSpec("mots20", 1, ("pedestrian",), "MOTSChallenge"),
}


@dataclass(frozen=True)
class ClassMetrics:
    """Scores of one class on one sequence, or on all sequences combined.

    Scores are fractions (1.0 is perfect); HOTA, DetA, AssA and LocA are the means over
    the localisation thresholds (alpha 0.05 ... 0.95), ``hota_curve`` the HOTA at each.
    sMOTSA, MOTSA and MOTSP are trackeval's CLEAR sMOTA, MOTA and MOTP on masks. Scores
    are None where the class has neither ground truth nor results in the sequence: they
    are undefined there (trackeval reports 0, which would read as a failure).
    """

    hota: float | None
    deta: float | None
    assa: float | None
    loca: float | None
    smotsa: float | None
    motsa: float | None
    motsp: float | None
    idf1: float | None
    idsw: int
    true_positives: int
    false_negatives: int
    false_positives: int
    gt_detections: int
    detections: int
    gt_tracks: int
    tracks: int
    hota_curve: tuple[float, ...] | None

    @property
    def is_empty(self) -> bool:
        """Neither ground truth nor results: nothing to score."""
        return self.gt_detections == 0 and self.detections == 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.hota_curve is not None:
            data["hota_curve"] = list(self.hota_curve)
        return data


@dataclass(frozen=True)
class EvaluationResult:
    """trackeval's scores per class, per sequence and over all sequences (``combined``)."""

    benchmark: str
    gt_dir: Path
    results_dir: Path
    sequences: tuple[str, ...]
    sequence_lengths: dict[str, int]
    classes: tuple[str, ...]
    alphas: tuple[float, ...]
    per_sequence: dict[str, dict[str, ClassMetrics]]  # class -> sequence -> metrics
    combined: dict[str, ClassMetrics]  # class -> metrics over all sequences
    # What produced the numbers: the evaluate command, and per sequence the record
    # `seg2track run`/`replay` wrote next to its results (None where there is none).
    command: str | None = None
    run_records: dict[str, dict[str, Any] | None] = field(default_factory=dict)

    def rows(self, class_name: str) -> list[tuple[str, ClassMetrics]]:
        """(name, metrics) for each sequence in order, then (COMBINED, combined)."""
        if class_name not in self.per_sequence:
            raise KeyError(f"class {class_name!r} was not evaluated; classes: {self.classes}")
        per_sequence = self.per_sequence[class_name]
        rows = [(sequence, per_sequence[sequence]) for sequence in self.sequences]
        rows.append((COMBINED, self.combined[class_name]))
        return rows

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data; ``metrics[class][sequence or COMBINED]`` holds the scores."""
        import importlib.metadata

        return {
            "benchmark": self.benchmark,
            "evaluator": f"trackeval {importlib.metadata.version('trackeval')}",
            "gt_dir": str(self.gt_dir),
            "results_dir": str(self.results_dir),
            "sequences": list(self.sequences),
            "sequence_lengths": dict(self.sequence_lengths),
            "classes": list(self.classes),
            "alphas": list(self.alphas),
            "metrics": {
                class_name: {name: metrics.to_dict() for name, metrics in self.rows(class_name)}
                for class_name in self.classes
            },
            "command": self.command,
            "run_records": dict(self.run_records),
        }


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class _Row:
    line: int
    frame: int
    object_id: int
    class_id: int
    height: int
    width: int
    rle: str


@dataclass(frozen=True)
class _SequenceFile:
    path: Path
    rows: tuple[_Row, ...]

    @property
    def image_size(self) -> tuple[int, int] | None:
        return (self.rows[0].height, self.rows[0].width) if self.rows else None

    @property
    def last_frame(self) -> int | None:
        return max(row.frame for row in self.rows) if self.rows else None


def _rle_pixel_count(counts: str) -> int:
    """Pixels covered by the runs of a compressed COCO RLE string (validation only:
    pycocotools' iou can loop forever on runs that do not add up to the image).
    Raises ValueError when the string is not a valid RLE."""
    runs = compressed_rle_runs(counts)
    if (runs < 0).any():
        raise ValueError("the RLE string decodes to a negative run length")
    return int(runs.sum())


def _parse_line(path: Path, number: int, text: str, first_frame: int) -> _Row:
    fields = text.split()
    if len(fields) != 6:
        raise EvaluationError(
            f"{path}:{number}: expected 6 space-separated fields (frame object_id class_id"
            f" img_height img_width rle), got {len(fields)}"
            + (" (the line is empty)" if not fields else "")
        )
    try:
        frame, object_id, class_id, height, width = (int(field) for field in fields[:5])
    except ValueError:
        raise EvaluationError(
            f"{path}:{number}: frame, object_id, class_id, img_height and img_width must be"
            f" integers, got {' '.join(fields[:5])!r}"
        ) from None
    if frame < first_frame:
        raise EvaluationError(
            f"{path}:{number}: frame {frame} is before the first frame {first_frame}"
            " (frames count from 0 in kitti_mots, from 1 in mots20)"
        )
    if height <= 0 or width <= 0:
        raise EvaluationError(f"{path}:{number}: image size {height}x{width} is not positive")
    try:
        pixels = _rle_pixel_count(fields[5])
    except ValueError as exc:
        raise EvaluationError(f"{path}:{number}: malformed RLE mask: {exc}") from None
    if pixels != height * width:
        raise EvaluationError(
            f"{path}:{number}: the RLE mask covers {pixels} pixels, but the image is"
            f" {height}x{width} = {height * width} pixels (wrong size columns or a"
            " truncated mask)"
        )
    return _Row(number, frame, object_id, class_id, height, width, fields[5])


def _read_sequence_file(path: Path, first_frame: int, *, is_gt: bool) -> _SequenceFile:
    try:
        text = path.read_text(encoding="ascii")
    except UnicodeDecodeError as exc:
        raise EvaluationError(f"{path}: not a text file of MOTS lines ({exc})") from None
    except OSError as exc:
        raise EvaluationError(f"{path}: cannot be read ({exc.strerror})") from None
    rows = tuple(
        _parse_line(path, number, line, first_frame)
        for number, line in enumerate(text.splitlines(), start=1)
    )
    sequence_file = _SequenceFile(path, rows)
    _check_frames(sequence_file, is_gt=is_gt)
    return sequence_file


def _check_frames(sequence_file: _SequenceFile, *, is_gt: bool) -> None:
    """One image size per file; per frame unique ids and masks that do not overlap.

    trackeval refuses both, but names neither the file nor the line. As in trackeval,
    ground-truth ignore regions (class 10) are merged first and may overlap each other.
    """
    from pycocotools import mask as mask_utils

    path = sequence_file.path
    by_frame: dict[int, list[_Row]] = defaultdict(list)
    for row in sequence_file.rows:
        first = sequence_file.rows[0]
        if (row.height, row.width) != (first.height, first.width):
            raise EvaluationError(
                f"{path}:{row.line}: image size {row.height}x{row.width} differs from"
                f" {first.height}x{first.width} on line {first.line}; one sequence has one"
                " image size"
            )
        by_frame[row.frame].append(row)

    def rle(row: _Row) -> dict[str, Any]:
        return {"size": [row.height, row.width], "counts": row.rle.encode("ascii")}

    for frame, rows in by_frame.items():
        seen: dict[int, _Row] = {}
        for row in rows:
            if is_gt and row.class_id == IGNORE_CLASS_ID:
                continue
            if row.object_id in seen:
                raise EvaluationError(
                    f"{path}:{row.line}: object id {row.object_id} appears twice in frame"
                    f" {frame} (also on line {seen[row.object_id].line}); ids must be unique"
                    " within a frame"
                )
            seen[row.object_id] = row
        if len(rows) < 2:
            continue
        groups: list[tuple[str, dict[str, Any]]] = []
        ignore = [row for row in rows if is_gt and row.class_id == IGNORE_CLASS_ID]
        if ignore:
            lines = ", ".join(str(row.line) for row in ignore)
            merged = mask_utils.merge([rle(row) for row in ignore], intersect=False)
            groups.append((f"the ignore region (line {lines})", merged))
        ignore_lines = {row.line for row in ignore}
        groups += [(f"line {row.line}", rle(row)) for row in rows if row.line not in ignore_lines]
        masks = [mask for _, mask in groups]
        union = mask_utils.merge(masks, intersect=False)
        if int(mask_utils.area(union)) == int(np.sum(mask_utils.area(masks))):
            continue
        for i, (name_a, mask_a) in enumerate(groups):
            for name_b, mask_b in groups[i + 1 :]:
                if mask_utils.area(mask_utils.merge([mask_a, mask_b], intersect=True)) > 0:
                    raise EvaluationError(
                        f"{path}: in frame {frame} the masks of {name_a} and {name_b} overlap;"
                        " MOTS masks must not overlap (give each pixel to one object)"
                    )


# ----------------------------------------------------------------------- the inputs


def _check_sequence_names(sequences: Sequence[str]) -> tuple[str, ...]:
    if isinstance(sequences, str):
        raise EvaluationError(f"sequences must be a list of names, got the string {sequences!r}")
    names = tuple(str(sequence) for sequence in sequences)
    if not names:
        raise EvaluationError("no sequences to evaluate: give at least one (e.g. 0002)")
    for name in names:
        if not name or name in (".", "..") or "/" in name or os.sep in name:
            raise EvaluationError(f"{name!r} is not a sequence name (expected e.g. 0002)")
        if names.count(name) > 1:
            raise EvaluationError(f"sequence {name} is listed more than once")
    return names


def _gt_candidates(gt_dir: Path, sequence: str, benchmark: str) -> list[Path]:
    if benchmark == "mots20":  # also the MOTSChallenge release layout
        return [gt_dir / f"{sequence}.txt", gt_dir / sequence / "gt" / "gt.txt"]
    return [gt_dir / f"{sequence}.txt", gt_dir / "instances_txt" / f"{sequence}.txt"]


def _find_file(candidates: list[Path], what: str, sequence: str) -> Path:
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    also = f" (also looked for {', '.join(map(str, candidates[1:]))})" if candidates[1:] else ""
    raise EvaluationError(f"{what} file for sequence {sequence} not found: {candidates[0]}{also}")


def _sequence_length(
    gt_dir: Path, sequence: str, gt_file: _SequenceFile, spec: BenchmarkSpec
) -> int:
    """Frames in the sequence: seqinfo.ini's seqLength (MOTS20) or the last annotated frame.

    Frames without any row (0006 frame 240) are fine; trailing frames without rows are
    not known from the text file alone, so a MOTS20 seqinfo.ini takes precedence.
    """
    if spec.name == "mots20":
        ini_file = gt_dir / sequence / "seqinfo.ini"
        if ini_file.is_file():
            parser = configparser.ConfigParser()
            try:
                parser.read(ini_file)
                return int(parser["Sequence"]["seqLength"])
            except (configparser.Error, KeyError, ValueError) as exc:
                raise EvaluationError(
                    f"{ini_file}: needs an integer seqLength in its [Sequence] section ({exc})"
                ) from None
    if gt_file.last_frame is None:
        raise EvaluationError(
            f"{gt_file.path}: the ground truth has no rows, so the sequence length is unknown"
        )
    return gt_file.last_frame - spec.first_frame + 1


def _check_results_against_gt(
    results: _SequenceFile, gt: _SequenceFile, length: int, spec: BenchmarkSpec
) -> None:
    last_frame = spec.first_frame + length - 1
    for row in results.rows:
        if (row.height, row.width) != gt.image_size and gt.image_size is not None:
            raise EvaluationError(
                f"{results.path}:{row.line}: image size {row.height}x{row.width} differs from"
                f" the ground truth's {gt.image_size[0]}x{gt.image_size[1]} ({gt.path})"
            )
        if row.frame > last_frame:
            raise EvaluationError(
                f"{results.path}:{row.line}: frame {row.frame} is after the last frame"
                f" {last_frame} of the sequence ({gt.path}; frames count from"
                f" {spec.first_frame} in {spec.name})"
            )


# ------------------------------------------------------------------------ trackeval


def _link(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        target.symlink_to(source.resolve())
    except OSError:  # no symlinks on this file system
        shutil.copyfile(source, target)


def _build_layout(
    root: Path,
    spec: BenchmarkSpec,
    gt_files: dict[str, Path],
    results_files: dict[str, Path],
    lengths: dict[str, int],
    image_sizes: dict[str, tuple[int, int] | None],
) -> dict[str, Any]:
    """trackeval's folders under root; returns the dataset config that points at them."""
    gt_folder = root / "gt"
    trackers_folder = root / "trackers"
    for sequence, path in results_files.items():
        _link(path, trackers_folder / _TRACKER_NAME / "data" / f"{sequence}.txt")
    config: dict[str, Any] = {
        "GT_FOLDER": str(gt_folder),
        "TRACKERS_FOLDER": str(trackers_folder),
        "OUTPUT_FOLDER": str(root / "output"),
        "TRACKERS_TO_EVAL": [_TRACKER_NAME],
        "CLASSES_TO_EVAL": list(spec.classes),
        "INPUT_AS_ZIP": False,
        "PRINT_CONFIG": False,
        "TRACKER_SUB_FOLDER": "data",
        "OUTPUT_SUB_FOLDER": "",
    }
    if spec.name == "kitti_mots":
        for sequence, path in gt_files.items():
            _link(path, gt_folder / "instances_txt" / f"{sequence}.txt")
        # SEQ_INFO instead of a seqmap: trackeval's seqmap reader fails on a one-line
        # file and only accepts numeric sequence names.
        config["SEQ_INFO"] = dict(lengths)
        config["GT_LOC_FORMAT"] = "{gt_folder}/instances_txt/{seq}.txt"
        config["SPLIT_TO_EVAL"] = "val"  # names a seqmap file only; unused with SEQ_INFO
    else:
        for sequence, path in gt_files.items():
            _link(path, gt_folder / sequence / "gt" / "gt.txt")
            height, width = image_sizes[sequence] or (0, 0)
            (gt_folder / sequence / "seqinfo.ini").write_text(
                "[Sequence]\n"
                f"name={sequence}\n"
                f"seqLength={lengths[sequence]}\n"
                f"imWidth={width}\n"
                f"imHeight={height}\n",
                encoding="ascii",
            )
        # None: trackeval reads each length from the seqinfo.ini written above.
        config["SEQ_INFO"] = dict.fromkeys(lengths)
        config["GT_LOC_FORMAT"] = "{gt_folder}/{seq}/gt/gt.txt"
        config["SKIP_SPLIT_FOL"] = True
        config["SPLIT_TO_EVAL"] = "train"
    return config


EVAL_CONFIG: dict[str, Any] = {
    "USE_PARALLEL": False,
    "BREAK_ON_ERROR": True,
    "RETURN_ON_ERROR": False,
    "LOG_ON_ERROR": None,  # the default appends to a file inside site-packages
    "PRINT_RESULTS": False,
    "PRINT_ONLY_COMBINED": False,
    "PRINT_CONFIG": False,
    "TIME_PROGRESS": False,  # True switches on trackeval's global timing printout
    "DISPLAY_LESS_PROGRESS": True,
    "OUTPUT_SUMMARY": False,
    "OUTPUT_EMPTY_CLASSES": False,
    "OUTPUT_DETAILED": False,
    "PLOT_CURVES": False,
}
"""trackeval.Evaluator config: serial, silent, writes no files (the report does that)."""

MATCH_THRESHOLD = 0.5  # mask IoU for a CLEAR / Identity match, the benchmarks' value


@contextlib.contextmanager
def _quiet(verbose: bool) -> Iterator[io.StringIO]:
    """Capture what trackeval prints (it prints progress whatever its config says)."""
    captured = io.StringIO()
    if verbose:
        yield captured
        return
    with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
        yield captured


def _run_trackeval(
    spec: BenchmarkSpec, dataset_config: dict[str, Any], verbose: bool
) -> tuple[dict[str, Any], tuple[float, ...]]:
    import trackeval
    from trackeval.utils import TrackEvalException

    eval_config = dict(EVAL_CONFIG)
    dataset_config = dict(dataset_config)
    if verbose:
        eval_config.update(PRINT_RESULTS=True, PRINT_CONFIG=True)
        dataset_config["PRINT_CONFIG"] = True
    with _quiet(verbose):
        try:
            evaluator = trackeval.Evaluator(eval_config)
            dataset = getattr(trackeval.datasets, spec.trackeval_dataset)(dataset_config)
            metric_config = {"THRESHOLD": MATCH_THRESHOLD, "PRINT_CONFIG": verbose}
            hota = trackeval.metrics.HOTA()
            metrics = [
                hota,
                trackeval.metrics.CLEAR(dict(metric_config)),
                trackeval.metrics.Identity(dict(metric_config)),
            ]
            output, messages = evaluator.evaluate([dataset], metrics)
        except (TrackEvalException, AssertionError) as exc:
            raise EvaluationError(
                f"trackeval could not evaluate these files: {' '.join(str(exc).split())}"
            ) from exc
    message = messages[spec.trackeval_dataset][_TRACKER_NAME]
    result = output[spec.trackeval_dataset][_TRACKER_NAME]
    if result is None:  # only when BREAK_ON_ERROR is off; kept as a guard
        raise EvaluationError(f"trackeval could not evaluate these files: {message}")
    alphas = tuple(round(float(alpha), 2) for alpha in hota.array_labels)
    return result, alphas


def _class_metrics(res: dict[str, Any]) -> ClassMetrics:
    """One trackeval ``res[seq][cls]`` entry as typed metrics."""
    hota, clear, identity, count = res["HOTA"], res["CLEAR"], res["Identity"], res["Count"]
    gt_detections = int(count["GT_Dets"])
    detections = int(count["Dets"])
    defined = gt_detections > 0 or detections > 0

    def score(value: Any) -> float | None:
        value = float(np.mean(value))
        return value if defined and math.isfinite(value) else None

    return ClassMetrics(
        hota=score(hota["HOTA"]),
        deta=score(hota["DetA"]),
        assa=score(hota["AssA"]),
        loca=score(hota["LocA"]),
        smotsa=score(clear["sMOTA"]),
        motsa=score(clear["MOTA"]),
        motsp=score(clear["MOTP"]),
        idf1=score(identity["IDF1"]),
        idsw=int(clear["IDSW"]),
        true_positives=int(clear["CLR_TP"]),
        false_negatives=int(clear["CLR_FN"]),
        false_positives=int(clear["CLR_FP"]),
        gt_detections=gt_detections,
        detections=detections,
        gt_tracks=int(count["GT_IDs"]),
        tracks=int(count["IDs"]),
        hota_curve=tuple(float(value) for value in hota["HOTA"]) if defined else None,
    )


# --------------------------------------------------------------------- the function


def evaluate(
    gt_dir: Path,
    results_dir: Path,
    sequences: Sequence[str],
    benchmark: Benchmark | str = "kitti_mots",
    out_dir: Path | None = None,
    *,
    verbose: bool = False,
    command: str | None = None,
) -> EvaluationResult:
    """Score ``results_dir/<seq>.txt`` against the ground truth in ``gt_dir`` with trackeval.

    ``gt_dir`` holds ``<seq>.txt`` (or, for KITTI MOTS, ``instances_txt/<seq>.txt``; for
    MOTS20, ``<seq>/gt/gt.txt`` with an optional ``<seq>/seqinfo.ini``). Sequence lengths
    come from the ground truth. With ``out_dir`` the report (metrics.json, report.md, plots)
    is written there. ``verbose`` lets trackeval print its config and tables to stdout.
    ``command`` (the command line) and each sequence's run record (``<seq>.run.yaml``
    next to its results) go into the report.
    Raises EvaluationError naming the file (and line) for inputs that cannot be evaluated.
    """
    spec = BENCHMARKS.get(str(benchmark))
    if spec is None:
        raise EvaluationError(
            f"unknown benchmark {benchmark!r}; choose one of {', '.join(BENCHMARKS)}"
        )
    names = _check_sequence_names(sequences)
    gt_dir = Path(gt_dir)
    results_dir = Path(results_dir)
    for folder, what in ((gt_dir, "ground-truth"), (results_dir, "results")):
        if not folder.is_dir():
            raise EvaluationError(f"{what} folder not found: {folder}")

    gt_paths: dict[str, Path] = {}
    results_paths: dict[str, Path] = {}
    for name in names:
        gt_paths[name] = _find_file(_gt_candidates(gt_dir, name, spec.name), "ground-truth", name)
        results_paths[name] = _find_file([results_dir / f"{name}.txt"], "results", name)

    lengths: dict[str, int] = {}
    image_sizes: dict[str, tuple[int, int] | None] = {}
    for name in names:
        gt_file = _read_sequence_file(gt_paths[name], spec.first_frame, is_gt=True)
        results_file = _read_sequence_file(results_paths[name], spec.first_frame, is_gt=False)
        lengths[name] = _sequence_length(gt_dir, name, gt_file, spec)
        image_sizes[name] = gt_file.image_size
        _check_results_against_gt(results_file, gt_file, lengths[name], spec)

    with tempfile.TemporaryDirectory(prefix="seg2track-trackeval-") as root:
        dataset_config = _build_layout(
            Path(root), spec, gt_paths, results_paths, lengths, image_sizes
        )
        output, alphas = _run_trackeval(spec, dataset_config, verbose)

    from seg2track_ros.provenance import read_record

    result = EvaluationResult(
        command=command,
        run_records={name: read_record(results_paths[name]) for name in names},
        benchmark=spec.name,
        gt_dir=gt_dir,
        results_dir=results_dir,
        sequences=names,
        sequence_lengths=lengths,
        classes=spec.classes,
        alphas=alphas,
        per_sequence={
            class_name: {name: _class_metrics(output[name][class_name]) for name in names}
            for class_name in spec.classes
        },
        combined={
            class_name: _class_metrics(output["COMBINED_SEQ"][class_name])
            for class_name in spec.classes
        },
    )
    if out_dir is not None:
        from seg2track_ros.evaluation.report import write_report

        write_report(result, Path(out_dir))
    return result
