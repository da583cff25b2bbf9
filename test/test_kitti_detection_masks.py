"""A real KITTI MOTS score for the track manager: simulated detections from the real
0002 annotations, the detection-masks segmenter, trackeval."""

from __future__ import annotations

from seg2track_ros.cli import main
from seg2track_ros.evaluation.evaluate import evaluate


def test_detection_masks_on_0002_scores_between_0_and_1_reproducibly(kitti_mots_gt, tmp_path):
    results = {}
    for attempt in ("a", "b"):
        detections = tmp_path / attempt / "dets.txt"
        out = tmp_path / attempt / "results" / "0002.txt"
        assert (
            main(
                [
                    "simulate-detections",
                    "--gt",
                    str(kitti_mots_gt / "0002.txt"),
                    "--out",
                    str(detections),
                    "--seed",
                    "7",
                ]
            )
            == 0
        )
        assert (
            main(
                [
                    "run",
                    "--detections",
                    str(detections),
                    "--segmenter",
                    "detection-masks",
                    "--frames",
                    "233",
                    "--results",
                    str(out),
                    "-q",
                ]
            )
            == 0
        )
        results[attempt] = out
    assert results["a"].read_bytes() == results["b"].read_bytes()
    scores = evaluate(kitti_mots_gt, results["a"].parent, ["0002"], "kitti_mots")
    for class_name in ("car", "pedestrian"):
        hota = scores.combined[class_name].hota
        assert 0.0 < hota < 1.0, (class_name, hota)
