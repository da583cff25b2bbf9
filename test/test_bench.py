"""`seg2track bench` quick mode runs end to end and writes its tables (no timing claims)."""

from __future__ import annotations

import pytest

from seg2track_ros.bench.host import HostBenchError, host_table, measure_host_overhead
from seg2track_ros.cli import main


def test_quick_bench_writes_its_section_and_plots(tmp_path):
    out, plots = tmp_path / "BENCHMARKS.md", tmp_path / "plots"
    args = [
        "bench",
        "--mode",
        "quick",
        "--device",
        "cpu",
        "--image-size",
        "128",
        "--out",
        str(out),
        "--plots",
        str(plots),
        "--dds-profile",  # Fast DDS's own: this process's later tests see no profile
        "default",
    ]
    # The several-cameras section has its own test (test_bench_cameras.py).
    assert main([*args, "--skip", "cameras"]) == 0
    text = out.read_text()
    assert "<!-- bench:cpu-quick-tiny-128 -->" in text
    for heading in (
        "Per-frame time vs number of objects",
        "Memory vs sequence length",
        "End-to-end latency through ROS 2",
        "Host overhead (SAM 2 compute made negligible)",
    ):
        assert heading in text
    assert "| 2 |" in text and "SAM2VideoPredictor" in text and "Command: `seg2track" in text
    assert sorted(p.name for p in plots.iterdir()) == [
        "memory_cpu-quick-tiny-128.png",
        "speed_cpu-quick-tiny-128.png",
    ]
    # A second run replaces its own section instead of appending another.
    assert main([*args, "--skip", "memory", "latency", "cameras"]) == 0
    assert out.read_text().count("<!-- bench:cpu-quick-tiny-128 -->") == 1


def test_host_overhead_measures_an_older_commit_beside_this_tree():
    """--before runs the same probe in a git worktree of the ref (HEAD here) in the same
    run; the table has both trees and their ratio."""
    results = measure_host_overhead(
        [2], 1, 0, "tiny", 64, "cpu", before="HEAD", frame_sizes=[(48, 80)], progress=str
    )
    assert [(r.tree, r.objects, r.frame_size) for r in results] == [
        ("before (HEAD)", 2, (48, 80)),
        ("this tree", 2, (48, 80)),
    ]
    assert all(len(r.step_ms) == len(r.output_ms) == 1 for r in results)
    assert "geometry" in results[1].phases_ms and results[1].host_ms() >= 0
    table = host_table(results)
    assert "| 2 | before (HEAD) |" in table and "- 80x48: 2: " in table
    with pytest.raises(HostBenchError, match="no-such-ref"):
        measure_host_overhead([1], 1, 0, "tiny", 64, "cpu", before="no-such-ref", progress=str)


def test_profile_names_the_sam2_parts_and_the_operators(capsys):
    from seg2track_ros.bench import profile

    args = "--model tiny --image-size 64 --objects 2 --frames 2 --warmup 1 --device cpu"
    assert profile.main(args.split()) == 0
    out = capsys.readouterr().out
    assert "2 objects, cpu, compile off; 2 profiled frames after 1 warm-up" in out
    for part in ("memory_attention", "sam_heads", "memory_encoder"):
        # once per frame each: propagate's attention and heads, finish_frame's encoder
        line = next(x for x in out.splitlines() if f"seg2track::{part}: " in x)
        assert line.endswith("ms per frame (1 calls)"), line
    assert "aten::" in out and "Self CPU time total" in out


def test_profile_rejects_no_objects():
    from seg2track_ros.bench import profile

    with pytest.raises(SystemExit):
        profile.main(["--objects", "0", "--device", "cpu"])
