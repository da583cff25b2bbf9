"""Why does each identity switch happen? Runs the tracker (detection-masks segmenter) on
simulated KITTI MOTS detections and classifies every identity switch by what happened to
the old and the new track (its own CLEAR-style matching: mask IoU > 0.5, continuing
matches kept; its counts are close to, not equal to, trackeval's).

    source env.sh && python scripts/idsw_causes.py GT_DIR SEQ SEED MISS_RATE [name=value ...]

e.g. ``python scripts/idsw_causes.py test/data/kitti_mots 0002 0 0.3``; name=value
overrides a TrackerConfig field. A diagnostic for issue 11, not part of the package.
"""

import sys
from collections import defaultdict

import numpy as np
from scipy.optimize import linear_sum_assignment

from seg2track_ros.datasets import kitti_mots, simulate
from seg2track_ros.datasets.records import decode_masks
from seg2track_ros.engine import tracker as tracker_mod
from seg2track_ros.engine.config import TrackerConfig, replace_from_mapping
from seg2track_ros.engine.detection_masks import DetectionMaskSegmenter
from seg2track_ros.engine.types import Detections

gt_dir, seq, seed, miss = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
overrides = {}
for arg in sys.argv[5:]:
    k, v = arg.split("=")
    overrides[k] = type(getattr(TrackerConfig(), k))(eval(v))
config = replace_from_mapping(TrackerConfig(), overrides)
gt = kitti_mots.read_kitti_mots(f"{gt_dir}/instances_txt/{seq}.txt")
noise = simulate.NoiseConfig(miss_rate=miss)
frames = max(gt) + 1
dets = simulate.simulate_detections(gt, noise, seed, frame_count=frames)
obj0 = next(o for f in gt.values() for o in f)
H, W = obj0.height, obj0.width
NAMES = {1: "car", 2: "pedestrian"}

# --- hooks ---------------------------------------------------------------------------
log = defaultdict(dict)  # frame -> track_id -> info
removed_reason = {}
born = {}
cur = {"frame": -1}
orig_advance = tracker_mod._advance


def advance(record, ev, existence, cfg, newborn):
    state = orig_advance(record, ev, existence, cfg, newborn)
    f = cur["frame"]
    log[f][record.track_id] = dict(
        state=None if state is None else state.name,
        matched=ev.detection_score is not None,
        logit=ev.logit,
        ex=record.existence,
        lost=record.lost_frames,
        weak=record.weak_frames,
        prompted=ev.prompted,
    )
    if newborn:
        born[record.track_id] = f
    if state is None:
        why = []
        if record.weak_frames >= cfg.max_weak_frames:
            why.append("weak")
        if record.lost_frames >= cfg.max_lost_frames:
            why.append("lost")
        if record.existence < cfg.min_existence:
            why.append("existence")
        removed_reason[record.track_id] = (f, "+".join(why), record.confirmed)
    return state


tracker_mod._advance = advance
trk = tracker_mod.Tracker(config, DetectionMaskSegmenter())
blank = np.zeros((H, W, 3), np.uint8)

# GT-track matching per frame (CLEAR: IoU > 0.5; continuing matches preferred)
prev_match = {}  # gt id -> track id last matched
events = []
history = {}
total_idsw = 0
for f in range(frames):
    cur["frame"] = f
    fd = dets.get(f, [])
    if fd:
        masks = decode_masks(fd).astype(bool)
        d = Detections(
            boxes=np.array([x.box for x in fd], np.float32),
            scores=np.array([x.score for x in fd], np.float32),
            class_ids=[NAMES[x.class_id] for x in fd],
            masks=masks,
        )
    else:
        d = Detections(
            boxes=np.zeros((0, 4), np.float32),
            scores=np.zeros(0, np.float32),
            class_ids=[],
            masks=np.zeros((0, H, W), bool),
        )
    result = trk.step(blank, d)
    labels = result.labels
    shown = [t for t in result.tracks if t.state.name in ("CONFIRMED", "OCCLUDED", "LOST")]
    gts = [o for o in gt.get(f, []) if not o.is_ignore]
    for cls in (1, 2):
        g = [o for o in gts if o.class_id == cls]
        t = [x for x in shown if x.class_id == NAMES[cls]]
        if not g or not t:
            continue
        gm = decode_masks(g).astype(bool).reshape(len(g), -1)
        tm = np.stack([(labels == x.label).reshape(-1) for x in t])
        inter = gm.astype(np.float32) @ tm.T.astype(np.float32)
        union = gm.sum(1)[:, None] + tm.sum(1)[None, :] - inter
        iou = np.where(union > 0, inter / np.maximum(union, 1), 0)
        score = iou.copy()
        for i, o in enumerate(g):
            for j, x in enumerate(t):
                if prev_match.get(o.object_id) == x.track_id and iou[i, j] > 0.5:
                    score[i, j] += 1000
        rows, cols = linear_sum_assignment(-score)
        for i, j in zip(rows, cols, strict=True):
            if iou[i, j] <= 0.5:
                continue
            gid, tid = g[i].object_id, t[j].track_id
            p = prev_match.get(gid)
            if p is not None and p != tid:
                total_idsw += 1
                events.append((f, gid, NAMES[cls], p, tid))
            prev_match[gid] = tid
            history.setdefault(tid, []).append((f, gid))


def describe(tid, f):
    info = log.get(f, {}).get(tid)
    return info


def last_seen(tid, f):
    for k in range(f, -1, -1):
        if tid in log.get(k, {}):
            return k, log[k][tid]
    return None, None


cats = defaultdict(int)
for f, gid, cls, old, new in events:
    nb = born.get(new)
    rr = removed_reason.get(old)
    if rr is not None and rr[0] < f:
        cause = f"old removed f{rr[0]} by {rr[1]} (confirmed={rr[2]})"
        key = f"old removed by {rr[1]}"
    else:
        ls, info = last_seen(old, f)
        cause = f"old alive: {info}"
        key = f"old alive state={info['state'] if info else None}"
    if nb == f:
        newk = "new track born now"
    elif nb is not None and f - nb < 5:
        newk = f"new track born {f - nb} frames before"
    else:
        newk = "existing track took over"
    cats[(key, newk)] += 1
    newhist = [g for (ff, g) in history.get(new, []) if ff < f]
    first_gt = newhist[0] if newhist else None
    if newk == "existing track took over":
        kind = (
            "duplicate of same gt"
            if set(newhist) <= {gid}
            else f"taker covered other gt {sorted(set(newhist) - {gid})}"
        )
        cats[("takeover", kind)] += 1
    print(
        f"f{f} gt{gid} {cls}: {old} -> {new} (born f{nb}, newhist {newhist[-3:]}); {cause}; {newk}"
    )
print("total IDSW (probe):", total_idsw)
for k, v in sorted(cats.items(), key=lambda kv: -kv[1]):
    print(v, k)
