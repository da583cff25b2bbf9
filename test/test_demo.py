"""`seg2track demo` end to end on a short sequence (the full one is `make demo`)."""

from __future__ import annotations

import pytest

from seg2track_ros.demo import BANNER, run_demo


def test_demo_produces_every_output(tmp_path, monkeypatch):
    monkeypatch.setenv("SEG2TRACK_CHECKPOINT_DIR", str(tmp_path / "no_checkpoints"))
    lines = []
    outputs = run_demo(tmp_path / "demo", say=lines.append, frames=6)
    for path in (
        outputs.ground_truth,
        outputs.detections,
        outputs.detection_mask_results,
        outputs.sam2_report,
        outputs.detection_mask_report,
        outputs.video,
    ):
        assert path.is_file() and path.stat().st_size > 0, path
    # With random weights SAM 2's masks are noise: whether a track matches its detection
    # again and so confirms (tracker.min_confirm_frames) is chance, so the results file
    # may be empty; it must exist (the replay wrote it) and the report must score it.
    assert outputs.sam2_results.is_file()
    assert (outputs.bag / "metadata.yaml").is_file()
    assert outputs.random_weights and BANNER in lines
    with pytest.raises(FileExistsError):
        run_demo(tmp_path / "demo", say=lines.append, frames=6)
