#!/usr/bin/env bash
# The track manager alone on real KITTI MOTS motion: simulated detections from the
# ground truth, the detection-masks segmenter (no images, no weights), trackeval.
# Prints HOTA, AssA and IDSW per class (combined over sequences 0002, 0006 and 0012),
# averaged over seeds, for the default noise and for 30 % missed detections.
#
#   source env.sh && scripts/manager_scores.sh [GT_DIR] [WORK_DIR]
#
# GT_DIR: folder with instances_txt/<seq>.txt (default /work/shared/data/kitti_mots).
# SEEDS="0 1 2 3 4" by default. The package is imported from this script's checkout
# (python -m from the repository root), so the same script scores any commit.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
gt="${1:-/work/shared/data/kitti_mots}"
work="${2:-$(mktemp -d)}"
seeds="${SEEDS:-0 1 2 3 4}"
sequences=(0002:233 0006:270 0012:78)
# name|extra simulate-detections options
settings=("default|" "miss30|--miss-rate 0.3")

s2t() { (cd "$root" && python -m seg2track_ros.cli "$@"); }

for setting in "${settings[@]}"; do
  name="${setting%%|*}"
  options="${setting#*|}"
  for seed in $seeds; do
    out="$work/$name/seed$seed"
    mkdir -p "$out/dets" "$out/results"
    for s in "${sequences[@]}"; do
      seq="${s%%:*}"
      # shellcheck disable=SC2086  # options is a word list
      s2t simulate-detections --gt "$gt/instances_txt/$seq.txt" --out "$out/dets/$seq.txt" \
        --seed "$seed" $options >/dev/null
      s2t run --detections "$out/dets/$seq.txt" --segmenter detection-masks \
        --frames "${s##*:}" --results "$out/results/$seq.txt" >/dev/null 2>&1
    done
    s2t evaluate --gt "$gt/instances_txt" --results "$out/results" \
      --seqs 0002 0006 0012 --out "$out/eval" >/dev/null
  done
done

python - "$work" $seeds <<'EOF'
import json
import sys
from pathlib import Path

work, seeds = Path(sys.argv[1]), sys.argv[2:]
print(f"seeds {' '.join(seeds)}; mean over seeds, combined over 0002 0006 0012")
print("| noise | class | HOTA | AssA | IDSW |")
print("|:------|:------|-----:|-----:|-----:|")
for name, label in (("default", "default"), ("miss30", "30 % missed")):
    for cls in ("car", "pedestrian"):
        rows = [
            json.loads((work / name / f"seed{s}" / "eval" / "metrics.json").read_text())[
                "metrics"
            ][cls]["COMBINED"]
            for s in seeds
        ]
        hota = 100 * sum(r["hota"] for r in rows) / len(rows)
        assa = 100 * sum(r["assa"] for r in rows) / len(rows)
        idsw = sum(r["idsw"] for r in rows) / len(rows)
        print(f"| {label} | {cls} | {hota:.1f} | {assa:.1f} | {idsw:.1f} |")
EOF
