"""`seg2track bench` quick mode runs end to end and writes its tables (no timing claims)."""

from __future__ import annotations

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
    ]
    assert main(args) == 0
    text = out.read_text()
    assert "<!-- bench:cpu-quick-tiny-128 -->" in text
    for heading in (
        "Per-frame time vs number of objects",
        "Memory vs sequence length",
        "End-to-end latency through ROS 2",
    ):
        assert heading in text
    assert "| 2 |" in text and "SAM2VideoPredictor" in text and "Command: `seg2track" in text
    assert sorted(p.name for p in plots.iterdir()) == [
        "memory_cpu-quick-tiny-128.png",
        "speed_cpu-quick-tiny-128.png",
    ]
    # A second run replaces its own section instead of appending another.
    assert main([*args, "--skip", "memory", "latency"]) == 0
    assert out.read_text().count("<!-- bench:cpu-quick-tiny-128 -->") == 1
