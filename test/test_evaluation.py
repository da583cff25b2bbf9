"""seg2track_ros.evaluation on the real KITTI MOTS ground truth (0002, 0006, 0012).

Results are made from the ground truth itself, then changed in ways whose effect on the
trackeval numbers is known exactly: one relabelled track is one id switch, a swap of two
tracks two, a false positive inside an ignore region costs nothing while the same one
elsewhere costs one false positive.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from seg2track_ros.evaluation import (
    COMBINED,
    EvaluationError,
    EvaluationResult,
    command_evaluate,
    evaluate,
)
from seg2track_ros.evaluation.report import (
    HOTA_ALPHA_PNG,
    METRICS_JSON,
    PER_SEQUENCE_PNG,
    REPORT_MD,
    class_table,
    format_table,
)

SEQUENCES = ("0002", "0006", "0012")
LENGTHS = {"0002": 233, "0006": 270, "0012": 78}
CAR, PEDESTRIAN, IGNORE = 1, 2, 10
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

Row = list[str]  # frame object_id class_id height width rle


def read_rows(path: Path) -> list[Row]:
    return [line.split() for line in path.read_text().splitlines()]


def write_rows(path: Path, rows: Iterable[Row]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(" ".join(row) + "\n" for row in rows))
    return path


def make_results(
    gt_dir: Path,
    out_dir: Path,
    sequences: Iterable[str],
    change: Callable[[list[Row]], list[Row]] = lambda rows: rows,
) -> Path:
    for sequence in sequences:
        write_rows(out_dir / f"{sequence}.txt", change(read_rows(gt_dir / f"{sequence}.txt")))
    return out_dir


def frames_of(rows: list[Row], object_id: int) -> set[int]:
    return {int(row[0]) for row in rows if int(row[1]) == object_id}


def decode(row: Row) -> np.ndarray:
    return mask_utils.decode({"size": [int(row[3]), int(row[4])], "counts": row[5].encode()})


def square_row(frame: int, object_id: int, class_id: int, size: tuple[int, int], y: int, x: int):
    mask = np.zeros(size, dtype=np.uint8, order="F")
    mask[y : y + 8, x : x + 8] = 1
    counts = mask_utils.encode(mask)["counts"].decode()
    return [str(frame), str(object_id), str(class_id), str(size[0]), str(size[1]), counts]


def first_square(region: np.ndarray, side: int = 8) -> tuple[int, int]:
    """Top-left corner of the first side x side square of pixels that are all True."""
    windows = np.lib.stride_tricks.sliding_window_view(region, (side, side)).all(axis=(2, 3))
    ys, xs = np.nonzero(windows)
    assert ys.size, "no free square found"
    return int(ys[0]), int(xs[0])


def assert_perfect(result: EvaluationResult, class_name: str, sequence: str) -> None:
    metrics = (
        result.combined[class_name]
        if sequence == COMBINED
        else result.per_sequence[class_name][sequence]
    )
    where = f"{class_name} {sequence}"
    for name in ("hota", "deta", "assa", "smotsa", "motsa", "idf1"):
        assert getattr(metrics, name) == pytest.approx(1.0, abs=1e-12), f"{where} {name}"
    assert metrics.idsw == 0, where
    assert metrics.hota_curve == pytest.approx([1.0] * len(result.alphas), abs=1e-12), where


@pytest.fixture(scope="module")
def self_evaluation(kitti_mots_gt: Path, tmp_path_factory) -> tuple[EvaluationResult, Path]:
    """All three sequences scored against a copy of themselves, with the report written."""
    root = tmp_path_factory.mktemp("self")
    results_dir = make_results(kitti_mots_gt, root / "results", SEQUENCES)
    out_dir = root / "report"
    result = evaluate(kitti_mots_gt, results_dir, list(SEQUENCES), "kitti_mots", out_dir)
    return result, out_dir


def test_ground_truth_against_itself_is_perfect(self_evaluation) -> None:
    result, _ = self_evaluation
    assert result.sequences == SEQUENCES
    assert result.classes == ("car", "pedestrian")
    # 0006 has no rows at all in frame 240 and still counts 270 frames.
    assert result.sequence_lengths == LENGTHS
    assert result.alphas == pytest.approx([0.05 * i for i in range(1, 20)])
    for sequence in SEQUENCES:
        assert_perfect(result, "car", sequence)
    assert_perfect(result, "car", COMBINED)
    for sequence in ("0002", "0012"):
        assert_perfect(result, "pedestrian", sequence)
    assert_perfect(result, "pedestrian", COMBINED)
    # 0006 has no pedestrian at all: undefined, not 0 (trackeval's number) and not 1.
    empty = result.per_sequence["pedestrian"]["0006"]
    assert empty.is_empty and empty.hota is None and empty.motsa is None
    assert empty.idsw == 0
    # The counts are the ground truth's (cars 903 + 537 + 140 rows, pedestrians 180 + 64).
    assert result.combined["car"].gt_detections == result.combined["car"].true_positives == 1580
    assert result.combined["pedestrian"].gt_detections == 244
    assert result.combined["car"].false_positives == result.combined["car"].false_negatives == 0


def test_relabelling_one_track_from_frame_k_is_one_id_switch(
    kitti_mots_gt: Path, tmp_path: Path
) -> None:
    gt_rows = read_rows(kitti_mots_gt / "0002.txt")
    object_id, fresh_id, k = 1005, 1099, 100
    assert {k - 1, k} <= frames_of(gt_rows, object_id)  # visible across the change
    assert not frames_of(gt_rows, fresh_id)

    def relabel(rows: list[Row]) -> list[Row]:
        return [
            [row[0], str(fresh_id), *row[2:]]
            if int(row[1]) == object_id and int(row[0]) >= k
            else row
            for row in rows
        ]

    results_dir = make_results(kitti_mots_gt, tmp_path / "results", ["0002"], relabel)
    result = evaluate(kitti_mots_gt, results_dir, ["0002"], "kitti_mots", None)

    car = result.per_sequence["car"]["0002"]
    assert car.idsw == 1 and result.combined["car"].idsw == 1
    assert car.deta == pytest.approx(1.0)  # every mask still found ...
    assert car.hota < 1.0 and car.assa < 1.0 and car.idf1 < 1.0  # ... but one track split
    assert car.motsa == pytest.approx((903 - 1) / 903)  # MOTSA = (TP - FP - IDSW) / GT
    assert car.tracks == car.gt_tracks + 1
    assert_perfect(result, "pedestrian", "0002")
    # The printed table shows the same numbers in percent, IDSW as a count.
    row = next(line for line in class_table(result, "car").splitlines() if "| 0002" in line)
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells == [
        "0002",
        f"{100 * car.hota:.1f}",
        "100.0",
        f"{100 * car.assa:.1f}",
        f"{100 * car.smotsa:.1f}",
        f"{100 * car.motsa:.1f}",
        f"{100 * car.idf1:.1f}",
        "1",
    ]


def test_swapping_two_tracks_from_frame_k_is_two_id_switches(
    kitti_mots_gt: Path, tmp_path: Path
) -> None:
    """trackeval counts a switch per ground-truth object, so a swap of two ids counts 2."""
    gt_rows = read_rows(kitti_mots_gt / "0002.txt")
    first, second, k = 1005, 1006, 100
    assert {k - 1, k} <= frames_of(gt_rows, first) & frames_of(gt_rows, second)
    swap = {str(first): str(second), str(second): str(first)}

    def swapped(rows: list[Row]) -> list[Row]:
        return [
            [row[0], swap.get(row[1], row[1]), *row[2:]] if int(row[0]) >= k else row
            for row in rows
        ]

    results_dir = make_results(kitti_mots_gt, tmp_path / "results", ["0002"], swapped)
    result = evaluate(kitti_mots_gt, results_dir, ["0002"], "kitti_mots", None)
    assert result.per_sequence["car"]["0002"].idsw == 2
    assert result.per_sequence["car"]["0002"].hota < 1.0


def test_false_positive_counts_outside_ignore_regions_only(
    kitti_mots_gt: Path, tmp_path: Path
) -> None:
    gt_rows = read_rows(kitti_mots_gt / "0002.txt")
    frame = 10
    in_frame = [row for row in gt_rows if int(row[0]) == frame]
    ignore = [row for row in in_frame if int(row[2]) == IGNORE]
    assert ignore
    size = (int(ignore[0][3]), int(ignore[0][4]))
    ignore_mask = np.any([decode(row) for row in ignore], axis=0)
    covered = np.any([decode(row) for row in in_frame], axis=0)
    inside = square_row(frame, 1999, CAR, size, *first_square(ignore_mask))
    outside = square_row(frame, 1999, CAR, size, *first_square(~covered))

    def tracker_output(extra: Row | None) -> Callable[[list[Row]], list[Row]]:
        # A tracker reports objects, not the ground truth's ignore regions.
        def change(rows: list[Row]) -> list[Row]:
            kept = [row for row in rows if int(row[2]) != IGNORE]
            return kept + ([extra] if extra else [])

        return change

    scores = {}
    for name, extra in (("none", None), ("inside", inside), ("outside", outside)):
        results_dir = make_results(kitti_mots_gt, tmp_path / name, ["0002"], tracker_output(extra))
        scores[name] = evaluate(kitti_mots_gt, results_dir, ["0002"], "kitti_mots", None)

    for name in ("none", "inside"):
        car = scores[name].per_sequence["car"]["0002"]
        assert car.false_positives == 0, name
        assert_perfect(scores[name], "car", "0002")
    car = scores["outside"].per_sequence["car"]["0002"]
    assert car.false_positives == 1
    assert car.motsa == pytest.approx((903 - 1) / 903)
    assert car.smotsa == pytest.approx((903 - 1) / 903)
    assert car.idf1 < 1.0 and car.hota < 1.0
    assert_perfect(scores["outside"], "pedestrian", "0002")


def test_report_files_hold_the_returned_numbers(self_evaluation) -> None:
    result, out_dir = self_evaluation
    for name in (METRICS_JSON, REPORT_MD, HOTA_ALPHA_PNG, PER_SEQUENCE_PNG):
        assert (out_dir / name).is_file(), name
    for name in (HOTA_ALPHA_PNG, PER_SEQUENCE_PNG):
        data = (out_dir / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000, name

    metrics = json.loads((out_dir / METRICS_JSON).read_text())
    assert metrics == result.to_dict()
    assert metrics["sequences"] == list(SEQUENCES)
    for class_name in result.classes:
        assert set(metrics["metrics"][class_name]) == {*SEQUENCES, COMBINED}
        for name, values in result.rows(class_name):
            stored = metrics["metrics"][class_name][name]
            assert stored["hota"] == values.hota
            assert stored["smotsa"] == values.smotsa
            assert stored["idf1"] == values.idf1
            assert stored["idsw"] == values.idsw
            assert stored["hota_curve"] == (
                None if values.hota_curve is None else list(values.hota_curve)
            )
    assert metrics["metrics"]["pedestrian"]["0006"]["hota"] is None

    report = (out_dir / REPORT_MD).read_text()
    for class_name in result.classes:
        assert f"## {class_name}" in report
        assert class_table(result, class_name) in report
    header = [cell.strip() for cell in class_table(result, "car").splitlines()[0].split("|")]
    assert header[1:-1] == ["sequence", "HOTA", "DetA", "AssA", "sMOTSA", "MOTSA", "IDF1", "IDSW"]
    assert "| COMBINED | 100.0 | 100.0 | 100.0 |  100.0 | 100.0 | 100.0 |    0 |" in report
    assert "| 0006     |   n/a |" in report
    assert format_table(result).count("| COMBINED") == 2


def test_evaluation_prints_nothing(kitti_mots_gt: Path, tmp_path: Path, capfd) -> None:
    results_dir = make_results(kitti_mots_gt, tmp_path / "results", ["0012"])
    result = evaluate(kitti_mots_gt, results_dir, ["0012"], "kitti_mots", None)
    assert_perfect(result, "car", "0012")
    assert capfd.readouterr() == ("", "")


def test_mots20_layout_against_itself_is_perfect(kitti_mots_gt: Path, tmp_path: Path) -> None:
    """0012's pedestrians as a MOTS20 sequence: frames from 1, release folder layout."""
    sequence = "MOTS20-12"
    rows = [
        [str(int(row[0]) + 1), *row[1:]]
        for row in read_rows(kitti_mots_gt / "0012.txt")
        if int(row[2]) in (PEDESTRIAN, IGNORE)
    ]
    gt_dir = tmp_path / "gt"
    write_rows(gt_dir / sequence / "gt" / "gt.txt", rows)
    # seqLength may exceed the last annotated frame (78): trailing frames without objects.
    (gt_dir / sequence / "seqinfo.ini").write_text(
        f"[Sequence]\nname={sequence}\nseqLength=80\nimWidth=1242\nimHeight=375\n"
    )
    results_dir = tmp_path / "results"
    write_rows(results_dir / f"{sequence}.txt", [row for row in rows if int(row[2]) != IGNORE])

    result = evaluate(gt_dir, results_dir, [sequence], "mots20", None)
    assert result.classes == ("pedestrian",)
    assert result.sequence_lengths == {sequence: 80}
    assert_perfect(result, "pedestrian", sequence)
    assert_perfect(result, "pedestrian", COMBINED)
    assert result.combined["pedestrian"].gt_detections == 64

    # KITTI numbering (frame 0) is not MOTS20.
    write_rows(results_dir / f"{sequence}.txt", [["0", *rows[0][1:]]])
    with pytest.raises(EvaluationError, match=r"MOTS20-12\.txt:1: frame 0 .*from 1 in mots20"):
        evaluate(gt_dir, results_dir, [sequence], "mots20", None)


# ---------------------------------------------------------------------------- errors


@pytest.fixture
def small_case(kitti_mots_gt: Path, tmp_path: Path) -> tuple[Path, Path]:
    return kitti_mots_gt, make_results(kitti_mots_gt, tmp_path / "results", ["0012"])


def test_missing_results_file_is_named(small_case) -> None:
    gt_dir, results_dir = small_case
    missing = results_dir / "0006.txt"
    with pytest.raises(EvaluationError) as caught:
        evaluate(gt_dir, results_dir, ["0012", "0006"], "kitti_mots", None)
    assert str(missing) in str(caught.value)
    assert "results file for sequence 0006" in str(caught.value)


def test_missing_ground_truth_file_is_named(small_case, tmp_path: Path) -> None:
    _, results_dir = small_case
    gt_dir = tmp_path / "empty_gt"
    gt_dir.mkdir()
    with pytest.raises(EvaluationError) as caught:
        evaluate(gt_dir, results_dir, ["0012"], "kitti_mots", None)
    assert str(gt_dir / "0012.txt") in str(caught.value)


@pytest.mark.parametrize(
    ("sequences", "benchmark", "message"),
    [
        ([], "kitti_mots", "no sequences"),
        (["0012"], "mot17", "unknown benchmark 'mot17'"),
        (["0012", "0012"], "kitti_mots", "listed more than once"),
        (["../0012"], "kitti_mots", "not a sequence name"),
    ],
)
def test_bad_arguments(small_case, sequences, benchmark, message) -> None:
    gt_dir, results_dir = small_case
    with pytest.raises(EvaluationError, match=message):
        evaluate(gt_dir, results_dir, sequences, benchmark, None)


def _broken(rows: list[Row], index: int, row: Row) -> list[Row]:
    return [*rows[:index], row, *rows[index + 1 :]]


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda rows: _broken(rows, 2, rows[2][:5]), r":3: expected 6 space-separated fields"),
        (lambda rows: _broken(rows, 2, ["x", *rows[2][1:]]), r":3: frame, object_id.*integers"),
        (lambda rows: _broken(rows, 2, [*rows[2][:5], rows[2][5][:-3]]), r":3: .*RLE"),
        (lambda rows: _broken(rows, 2, [*rows[2][:5], "~~"]), r":3: malformed RLE"),
        (lambda rows: _broken(rows, 2, [*rows[2][:3], "376", *rows[2][4:]]), r":3: .*pixels"),
        (lambda rows: _broken(rows, 2, [*rows[2][:3], "1242", "375", rows[2][5]]), r":3: image"),
        (lambda rows: [*rows, ["78", *rows[0][1:]]], r"frame 78 is after the last frame 77"),
        (lambda rows: [*rows, [rows[0][0], "1777", *rows[0][2:]]], r"masks of line 1 and line"),
        (lambda rows: [*rows, rows[0]], r"object id \d+ appears twice in frame 0"),
    ],
    ids=[
        "fields",
        "integer",
        "truncated-rle",
        "rle-chars",
        "rle-size",
        "image-size",
        "frame",
        "overlap",
        "dup-id",
    ],
)
def test_malformed_results_name_file_and_line(small_case, breakage, message) -> None:
    gt_dir, results_dir = small_case
    path = results_dir / "0012.txt"
    write_rows(path, breakage(read_rows(path)))
    with pytest.raises(EvaluationError, match=message) as caught:
        evaluate(gt_dir, results_dir, ["0012"], "kitti_mots", None)
    assert str(path) in str(caught.value)


def test_trackeval_errors_are_raised_as_evaluation_errors(small_case, monkeypatch, capfd) -> None:
    import trackeval
    from trackeval.utils import TrackEvalException

    def fail(*args, **kwargs):
        raise TrackEvalException("Tracking data from tracker x, sequence 0012 cannot be read")

    monkeypatch.setattr(trackeval.datasets.KittiMOTS, "_load_raw_file", fail)
    gt_dir, results_dir = small_case
    with pytest.raises(EvaluationError, match=r"trackeval could not evaluate.*sequence 0012"):
        evaluate(gt_dir, results_dir, ["0012"], "kitti_mots", None)
    assert capfd.readouterr() == ("", "")  # trackeval's traceback printout stays captured


# --------------------------------------------------------------------------- command


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seg2track")
    command_evaluate.add_parser(parser.add_subparsers())
    return parser


def test_command_help_describes_every_option(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        _parser().parse_args(["evaluate", "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for option in ("--gt", "--results", "--seqs", "--benchmark", "--out", "--verbose"):
        assert option in text
    assert "kitti_mots" in text and "mots20" in text and "metrics.json" in text


def test_command_prints_table_and_report_paths(small_case, tmp_path: Path, capsys) -> None:
    gt_dir, results_dir = small_case
    out_dir = tmp_path / "out"
    argv = ["evaluate", "--gt", str(gt_dir), "--results", str(results_dir), "--seqs", "0012"]
    args = _parser().parse_args([*argv, "--out", str(out_dir)])
    assert args.handler(args) == 0
    printed = capsys.readouterr().out
    assert "| COMBINED | 100.0 |" in printed
    for name in (REPORT_MD, METRICS_JSON, HOTA_ALPHA_PNG, PER_SEQUENCE_PNG):
        assert str(out_dir / name) in printed
        assert (out_dir / name).is_file()
