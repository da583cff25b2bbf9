"""report.md records its inputs (issue 12): the evaluate command, and for each sequence
the command and the parameters behind its results, from the record `run` and `replay`
write next to each results file."""

from __future__ import annotations

import json

import yaml

from seg2track_ros.cli import main
from seg2track_ros.datasets.synthetic import make_sequence
from seg2track_ros.provenance import record_path


def test_report_md_names_the_commands_and_parameters_behind_the_table(tmp_path, capsys):
    seq = make_sequence(tmp_path / "seq", frames=6, size=(72, 120), seed=5)
    gt = tmp_path / "gt"
    gt.mkdir()
    (gt / "0000.txt").write_text(seq.ground_truth.read_text())
    dets = tmp_path / "dets.txt"
    assert main(["simulate-detections", "--gt", str(seq.ground_truth), "--out", str(dets)]) == 0
    results = tmp_path / "results" / "0000.txt"
    results.parent.mkdir()
    run = (
        f"run --detections {dets} --segmenter detection-masks --frames 6 --results {results} -q"
        " --set tracker.max_weak_frames=7 --set tracker.classes.car.detection_threshold=0.3"
    ).split()
    assert main(run) == 0
    record = yaml.safe_load(record_path(results).read_text())
    assert record["command"].startswith("seg2track run --detections")
    assert record["parameters_changed"] == {
        "segmenter": "detection-masks",  # --segmenter sets the parameter of that name
        "tracker.classes.car.detection_threshold": 0.3,
        "tracker.max_weak_frames": 7,
    }
    assert record["parameters"]["tracker.max_weak_frames"] == 7
    assert record["parameters"]["model"] == "small"  # every parameter, defaults too
    assert record["inputs"]["segmenter"] == "detection-masks"
    capsys.readouterr()

    out = tmp_path / "report"
    evaluate = f"evaluate --gt {gt} --results {results.parent} --seqs 0000 --out {out}".split()
    assert main(evaluate) == 0
    report = (out / "report.md").read_text()
    inputs = report[report.index("## Inputs") :]
    assert f"seg2track evaluate --gt {gt}" in inputs
    assert record["command"] in inputs
    assert "| `tracker.max_weak_frames` | `7` |" in inputs
    assert "| `tracker.classes.car.detection_threshold` | `0.3` |" in inputs
    assert "unmapped" not in report  # every track's class was mapped
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["run_records"]["0000"]["parameters_changed"] == record["parameters_changed"]
    assert metrics["command"].startswith("seg2track evaluate")


def test_report_says_when_results_have_no_record(tmp_path):
    from seg2track_ros.evaluation.evaluate import evaluate
    from seg2track_ros.evaluation.report import render_markdown

    seq = make_sequence(tmp_path / "seq", frames=4, size=(64, 96), seed=6)
    folder = tmp_path / "gt"
    folder.mkdir()
    (folder / "0000.txt").write_text(seq.ground_truth.read_text())
    result = evaluate(folder, folder, ["0000"], "kitti_mots", None)  # gt scored as results
    text = render_markdown(result)
    assert "No record of how the results of 0000 were produced" in text


def test_report_counts_tracks_the_class_map_left_out(tmp_path, capsys):
    """Tracks of a class without a class-map entry are left out of the results file; the
    run record counts them and report.md says so at the top and per sequence (issue 12),
    so a low score is never read as the tracker's alone."""
    seq = make_sequence(tmp_path / "seq", frames=6, size=(72, 120), seed=5)
    gt = tmp_path / "gt"
    gt.mkdir()
    (gt / "0000.txt").write_text(seq.ground_truth.read_text())
    dets = tmp_path / "dets.txt"
    assert main(["simulate-detections", "--gt", str(seq.ground_truth), "--out", str(dets)]) == 0
    # One car per frame turned into COCO class 7 (truck), which the coco map leaves out.
    lines, seen = [], set()
    for line in dets.read_text().splitlines():
        fields = line.split(" ")
        if fields[6] == "1" and fields[0] not in seen:
            seen.add(fields[0])
            fields[6] = "7"
        lines.append(" ".join(fields))
    dets.write_text("\n".join(lines) + "\n")
    results = tmp_path / "results" / "0000.txt"
    results.parent.mkdir()
    run = f"run --detections {dets} --segmenter detection-masks --results {results} -q"
    assert main(run.split()) == 0
    record = yaml.safe_load(record_path(results).read_text())
    assert set(record["unmapped_tracks"]) == {"7"} and record["unmapped_tracks"]["7"] >= 1
    count = record["unmapped_tracks"]["7"]
    capsys.readouterr()

    out = tmp_path / "report"
    evaluate = f"evaluate --gt {gt} --results {results.parent} --seqs 0000 --out {out}".split()
    assert main(evaluate) == 0
    report = (out / "report.md").read_text()
    headline, inputs = report[: report.index("## ")], report[report.index("## Inputs") :]
    noun = "track" if count == 1 else "tracks"
    assert f"{count} {noun} of unmapped classes left out (7 {count})" in headline
    assert f"{count} {noun} of unmapped classes left out (7 {count}) (not scored)" in inputs
