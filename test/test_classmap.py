"""Issue 12, defect 2: detector classes reach the benchmark's results through a class map;
unmapped classes are warned about once and counted, never dropped silently."""

from __future__ import annotations

import numpy as np
import pytest

from seg2track_ros.classmap import ClassMap, ClassMapError, describe_unmapped, parse_class_map
from seg2track_ros.datasets import read_kitti_mots, read_mots20
from seg2track_ros.engine.types import TrackState
from seg2track_ros.results import ResultRow, ResultsRecorder


def _mask(x0: int) -> np.ndarray:
    mask = np.zeros((20, 30), bool)
    mask[2:8, x0 : x0 + 4] = True
    return mask


def _rows(frame: int) -> list[ResultRow]:
    confirmed = TrackState.CONFIRMED
    return [
        ResultRow(1, "person", confirmed, _mask(0)),
        ResultRow(2, "2", confirmed, _mask(5)),  # COCO id of car
        ResultRow(3, "truck", confirmed, _mask(10)),
        ResultRow(4 + frame, "truck", confirmed, _mask(15)),  # a new truck each frame
        ResultRow(9, "bicycle", TrackState.TENTATIVE, _mask(20)),  # not a result anyway
    ]


def test_coco_defaults_reach_kitti_mots_and_unmapped_tracks_are_counted(tmp_path):
    warnings: list[str] = []
    path = tmp_path / "r.txt"
    with ResultsRecorder(path, warn=warnings.append) as recorder:
        for frame in range(3):
            recorder.add(frame, _rows(frame))
        summary = recorder.close()
    written = read_kitti_mots(path)
    classes = sorted({(obj.class_name, obj.instance) for objs in written.values() for obj in objs})
    assert classes == [("car", 1), ("pedestrian", 1)]
    assert summary.lines == 6
    # trucks 3, 4, 5 and 6: four distinct tracks; the tentative bicycle is no result.
    assert summary.unmapped_tracks == {"truck": 4}
    assert len(warnings) == 1 and "'truck'" in warnings[0] and "class map" in warnings[0]
    assert describe_unmapped(summary.unmapped_tracks) == (
        "4 tracks of unmapped classes left out (truck 4)"
    )


def test_an_explicit_map_keeps_more_classes_and_none_keeps_only_benchmark_names(tmp_path):
    path = tmp_path / "r.txt"
    with ResultsRecorder(path, class_map=parse_class_map("coco,truck=car")) as recorder:
        recorder.add(0, _rows(0))
        summary = recorder.close()
    assert summary.unmapped_tracks == {}
    assert sorted(obj.class_name for obj in read_kitti_mots(path)[0]) == [
        "car",
        "car",
        "car",
        "pedestrian",
    ]
    rows = [ResultRow(1, "person", TrackState.CONFIRMED, _mask(0))]
    rows.append(ResultRow(2, "pedestrian", TrackState.CONFIRMED, _mask(10)))
    with ResultsRecorder(path, class_map=parse_class_map("none"), warn=lambda m: None) as rec:
        rec.add(0, rows)
        summary = rec.close()
    assert summary.unmapped_tracks == {"person": 1} and summary.lines == 1


def test_a_class_the_benchmark_lacks_is_counted_too(tmp_path):
    warnings: list[str] = []
    path = tmp_path / "mots20.txt"
    with ResultsRecorder(path, "mots20", warn=warnings.append) as recorder:
        recorder.add(0, _rows(0))
        summary = recorder.close()
    assert [obj.class_name for obj in read_mots20(path)[0]] == ["pedestrian"]
    assert summary.unmapped_tracks == {"2": 1, "truck": 2}
    assert any("MOTS20 does not have" in w or "does not have" in w for w in warnings)


def test_class_map_specs_and_files(tmp_path):
    assert parse_class_map(None) == parse_class_map("coco") == ClassMap()
    assert parse_class_map("coco").benchmark_class("0") == "pedestrian"
    assert parse_class_map("coco").benchmark_class("truck") is None
    assert parse_class_map("none").benchmark_class("person") is None
    assert parse_class_map("none").benchmark_class("car") == "car"
    assert parse_class_map("person=pedestrian, 7 = car").benchmark_class("7") == "car"
    path = tmp_path / "map.yaml"
    path.write_text("person: pedestrian\n0: pedestrian\nvan: car\n")
    from_file = parse_class_map(str(path))
    assert from_file.benchmark_class("van") == "car"
    assert from_file.benchmark_class("0") == "pedestrian"
    assert from_file.benchmark_class("2") is None  # a file replaces the defaults
    for bad in ("person=cyclist", "person", "=car", str(tmp_path / "missing.yaml")):
        with pytest.raises(ClassMapError):
            parse_class_map(bad)
    path.write_text("- person\n")
    with pytest.raises(ClassMapError, match="maps detector classes"):
        parse_class_map(str(path))


def test_run_reports_unmapped_tracks_and_maps_coco_classes(tmp_path, capsys):
    """Through the CLI: a COCO detector's box file (class numbers kept as names) ->
    `run --class-map` -> the results and the summary line."""
    from seg2track_ros.cli import main

    boxes = tmp_path / "boxes.txt"
    # kitti_boxes reader: class numbers other than 1 and 2 stay their number (COCO 0, 7).
    boxes.write_text("".join(f"{f} 10 10 30 40 0.9 0\n{f} 50 10 70 40 0.9 7\n" for f in range(6)))
    images = tmp_path / "images"
    images.mkdir()
    import cv2

    for index in range(6):
        cv2.imwrite(str(images / f"{index}.png"), np.full((60, 90, 3), 90, np.uint8))
    results = tmp_path / "r.txt"
    args = ["run", "--images", str(images), "--detections", str(boxes), "--det-format", "kitti"]
    args += ["--segmenter", "detection-masks", "--results", str(results), "-q"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "class '7' has no class map entry" in captured.err
    assert captured.err.count("class '7'") == 1  # once, not once per frame
    assert "1 track of unmapped classes left out (7 1)" in captured.out
    written = read_kitti_mots(results)
    assert {obj.class_name for objs in written.values() for obj in objs} == {"pedestrian"}
    assert main([*args, "--class-map", "coco,7=car"]) == 0
    assert "unmapped classes" not in capsys.readouterr().out
    written = read_kitti_mots(results)
    assert {obj.class_name for objs in written.values() for obj in objs} == {"pedestrian", "car"}


def test_input_class_map_renames_detections_and_reports_unmapped_once():
    from seg2track_ros.classmap import DetectionClassMapper
    from seg2track_ros.engine.types import Detections

    reports: list[str] = []
    mapper = DetectionClassMapper(parse_class_map("coco"), reports.append)
    boxes = np.array([[0, 0, 5, 5], [1, 1, 6, 6], [2, 2, 7, 7]], np.float32)
    frame = Detections(boxes, np.full(3, 0.9, np.float32), ("person", "truck", "2"))
    assert mapper(frame).class_ids == ("pedestrian", "truck", "car")
    assert mapper(frame).class_ids == ("pedestrian", "truck", "car")
    assert len(reports) == 1 and "'truck'" in reports[0]
    assert mapper(Detections.empty()).class_ids == ()


def test_run_with_the_class_map_parameter_tracks_under_benchmark_names(tmp_path, capsys):
    """tracker_node's `class_map` parameter, through `run` (same code path as the node's
    configs): COCO '0' becomes pedestrian before tracking, so even a results map of
    'none' keeps it; a bad spec is refused naming the parameter."""
    import cv2

    from seg2track_ros.cli import main

    boxes = tmp_path / "boxes.txt"
    boxes.write_text("".join(f"{f} 10 10 30 40 0.9 0\n" for f in range(6)))
    images = tmp_path / "images"
    images.mkdir()
    for index in range(6):
        cv2.imwrite(str(images / f"{index}.png"), np.full((60, 90, 3), 90, np.uint8))
    results = tmp_path / "r.txt"
    args = ["run", "--images", str(images), "--detections", str(boxes), "--det-format", "kitti"]
    args += ["--segmenter", "detection-masks", "--results", str(results), "-q"]
    args += ["--class-map", "none"]
    assert main(args) == 0
    assert "left out (0 1)" in capsys.readouterr().out and not read_kitti_mots(results)
    assert main([*args, "--set", "class_map=coco"]) == 0
    assert "unmapped classes" not in capsys.readouterr().out
    written = read_kitti_mots(results)
    assert {obj.class_name for objs in written.values() for obj in objs} == {"pedestrian"}
    assert main([*args, "--set", "class_map=person=cyclist"]) == 1
    assert "parameter 'class_map'" in capsys.readouterr().err
