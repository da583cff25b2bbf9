"""Simulated detections from the real KITTI MOTS ground truth: seeded, honest to the rates."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from scipy.optimize import linear_sum_assignment

from seg2track_ros.datasets import read_detections, read_kitti_mots, read_trackrcnn
from seg2track_ros.datasets.command_simulate import add_parser, run
from seg2track_ros.datasets.simulate import (
    NoiseConfig,
    SimulationError,
    simulate_detections,
    simulate_file,
)
from seg2track_ros.engine.masks import mask_to_box


@pytest.fixture(scope="module")
def gt_0002(kitti_mots_gt):
    return read_kitti_mots(kitti_mots_gt / "0002.txt")


@pytest.fixture(scope="module")
def gt_0012(kitti_mots_gt):
    return read_kitti_mots(kitti_mots_gt / "0012.txt")


def test_same_seed_same_bytes_other_seed_differs(tmp_path, kitti_mots_gt):
    gt = kitti_mots_gt / "0012.txt"
    paths = [tmp_path / name for name in ("a.txt", "b.txt", "c.txt")]
    simulate_file(gt, paths[0], seed=7)
    simulate_file(gt, paths[1], seed=7)
    simulate_file(gt, paths[2], seed=8)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()
    assert len(paths[0].read_text().splitlines()) > 100


def test_noiseless_detections_are_the_ground_truth(gt_0012):
    detections = simulate_detections(gt_0012, NoiseConfig.noiseless(), seed=1)
    objects = {f: [o for o in objs if not o.is_ignore] for f, objs in gt_0012.items()}
    objects = {f: objs for f, objs in objects.items() if objs}
    assert list(detections) == list(objects)
    for frame, objs in objects.items():
        found = detections[frame]
        assert len(found) == len(objs)
        for obj, detection in zip(objs, found, strict=True):
            mask = obj.mask()
            np.testing.assert_array_equal(detection.mask(), mask)
            assert detection.counts == obj.counts
            assert detection.box == mask_to_box(mask)
            assert detection.class_id == obj.class_id
            assert (detection.height, detection.width) == (375, 1242)
            assert 0.0 < detection.score <= 1.0


def test_ignore_regions_never_become_detections(gt_0012):
    """Ignore regions in 0012 are large; with only misses turned off, none is detected."""
    ignore = [o for objs in gt_0012.values() for o in objs if o.is_ignore]
    assert len(ignore) > 20
    detections = simulate_detections(gt_0012, NoiseConfig.noiseless(), seed=2)
    written = {d.counts for found in detections.values() for d in found}
    assert not written & {o.counts for o in ignore}


def test_erode_dilate_stays_within_the_radius(gt_0012):
    import cv2

    config = NoiseConfig(miss_rate=0, box_jitter=0, false_positives_per_frame=0, mask_radius=2)
    detections = simulate_detections(gt_0012, config, seed=3)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    grown = shrunk = same = 0
    for frame, objects in gt_0012.items():
        people_and_cars = [o for o in objects if not o.is_ignore]
        for obj, detection in zip(people_and_cars, detections.get(frame, []), strict=True):
            gt = obj.mask()
            mask = detection.mask()
            outer = cv2.dilate(gt.astype(np.uint8), kernel).astype(bool)
            inner = cv2.erode(gt.astype(np.uint8), kernel).astype(bool)
            assert not (mask & ~outer).any() and not (inner & ~mask).any()
            grown += int((mask & ~gt).any())
            shrunk += int((gt & ~mask).any())
            same += int((mask == gt).all())
            assert detection.box == mask_to_box(mask)  # box from the noisy mask
    # radii -2..2 drawn uniformly: about 2/5 grown, 2/5 shrunk, 1/5 unchanged
    total = grown + shrunk + same
    assert 0.3 < grown / total < 0.5 and 0.3 < shrunk / total < 0.5 and same / total < 0.3


def _match(detections, objects):
    """Hungarian matching on mask IoU >= 0.1: (matched detection indices, pairs).

    The threshold is low because radius-2 erosion leaves small objects' masks with
    IoU < 0.5; false positives, placed at random, almost never reach 0.1.
    """
    if not detections or not objects:
        return set(), []
    iou = mask_utils.iou([d.rle for d in detections], [o.rle for o in objects], [0] * len(objects))
    rows, cols = linear_sum_assignment(-iou)
    pairs = [(r, c) for r, c in zip(rows, cols, strict=True) if iou[r, c] >= 0.1]
    return {r for r, _ in pairs}, pairs


def test_default_rates_are_honoured_on_sequence_0002(gt_0002):
    config = NoiseConfig()
    detections = simulate_detections(gt_0002, config, seed=0)
    frames = max(gt_0002) + 1
    gt_objects = tp_scores = 0
    fp_scores: list[float] = []
    tp_score_list: list[float] = []
    edge_errors: list[float] = []
    for frame in range(frames):
        objects = [o for o in gt_0002.get(frame, []) if not o.is_ignore]
        found = detections.get(frame, [])
        matched, pairs = _match(found, objects)
        gt_objects += len(objects)
        tp_scores += len(pairs)
        tp_score_list += [found[r].score for r in matched]
        fp_scores += [d.score for i, d in enumerate(found) if i not in matched]
        for r, c in pairs:
            x0, _, x1, _ = objects[c].box()
            width = x1 - x0
            if width >= 40 and x0 > 5 and x1 < 1237:  # away from the image edge's clipping
                edge_errors.append((found[r].box[0] - x0) / width)
    miss_fraction = 1 - tp_scores / gt_objects
    assert gt_objects == 1083
    # three standard deviations: binomial over 1083 objects, Poisson over 233 frames
    assert abs(miss_fraction - config.miss_rate) < 0.03
    assert abs(len(fp_scores) / frames - config.false_positives_per_frame) < 0.11
    assert abs(np.mean(tp_score_list) - 0.85) < 0.02
    assert abs(np.mean(fp_scores) - 0.4) < 0.08
    # edge shift: jitter (5% of the width) plus at most 2 px of erosion or dilation
    assert 0.04 < np.std(edge_errors) < 0.07


def test_rates_move_with_the_settings(gt_0012):
    none = NoiseConfig(miss_rate=1.0, false_positives_per_frame=0.0)
    assert simulate_detections(gt_0012, none, seed=0) == {}
    fp_only = NoiseConfig(miss_rate=1.0, false_positives_per_frame=2.0)
    detections = simulate_detections(gt_0012, fp_only, seed=0, frame_count=100)
    count = sum(map(len, detections.values()))
    assert 160 < count < 240  # Poisson(2) over 100 frames, including 22 past the GT
    assert max(detections) > 77
    for found in detections.values():
        for d in found:
            x0, y0, x1, y1 = d.box
            assert 0 <= x0 < x1 <= 1242 and 0 <= y0 < y1 <= 375
            assert d.class_id in (1, 2)


def test_output_parses_with_the_trackrcnn_reader(tmp_path, kitti_mots_gt, gt_0012):
    out = tmp_path / "det.txt"
    lines = simulate_file(kitti_mots_gt / "0012.txt", out, seed=5)
    parsed = read_trackrcnn(out)
    assert sum(map(len, parsed.values())) == lines
    assert parsed == simulate_detections(gt_0012, NoiseConfig(), seed=5)
    sequence = read_detections(out, "trackrcnn")
    first = sequence[sequence.frames[0]]
    assert first.masks.shape == (len(first), 375, 1242)
    assert set(first.class_ids) <= {"car", "pedestrian"}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"miss_rate": 1.5}, "miss_rate must be in"),
        ({"box_jitter": -0.1}, "box_jitter must be >= 0"),
        ({"false_positives_per_frame": -1}, "false_positives_per_frame must be >= 0"),
        ({"true_positive_score_beta": (0, 1)}, "true_positive_score_beta must be two positive"),
        ({"mask_radius": -1}, "mask_radius must be a non-negative integer"),
        ({"mask_radius": 1.5}, "mask_radius must be a non-negative integer"),
    ],
)
def test_invalid_noise_settings_are_refused(settings, message):
    with pytest.raises(SimulationError, match=message):
        NoiseConfig(**settings)


def test_empty_ground_truth_is_refused():
    with pytest.raises(SimulationError, match="no objects"):
        simulate_detections({}, NoiseConfig(), seed=0)


def _parser():
    parser = argparse.ArgumentParser(prog="seg2track")
    add_parser(parser.add_subparsers())
    return parser


def test_command_writes_the_file(tmp_path, kitti_mots_gt, capsys):
    out = tmp_path / "det.txt"
    common = ["simulate-detections", "--gt", str(kitti_mots_gt / "0012.txt"), "--out", str(out)]
    noiseless = ["--miss-rate", "0", "--jitter", "0", "--false-positives", "0"]
    args = _parser().parse_args([*common, "--seed", "4", *noiseless, "--erode-dilate", "0"])
    assert args.handler(args) == 0
    assert capsys.readouterr().out.strip() == str(out)
    expected = simulate_detections(
        read_kitti_mots(kitti_mots_gt / "0012.txt"), NoiseConfig.noiseless(), seed=4
    )
    assert read_trackrcnn(out) == expected
    bad = _parser().parse_args([*common, "--miss-rate", "2"])
    with pytest.raises(SimulationError, match="miss_rate"):
        run(bad)


def test_command_help_describes_every_option(capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(["simulate-detections", "--help"])
    text = capsys.readouterr().out
    for option in (
        "--gt",
        "--out",
        "--seed",
        "--miss-rate",
        "--jitter",
        "--false-positives",
        "--erode-dilate",
        "--tp-score-beta",
        "--fp-score-beta",
        "--frames",
    ):
        assert option in text
    assert "default: 0.1" in text
