"""`seg2track bench`'s several-cameras section: one tracker_node for N cameras vs N nodes,
measured for real over DDS at quick sizes (structure and sanity, no timing claims)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from seg2track_ros.bench import cameras as cameras_bench
from seg2track_ros.bench.cameras import (
    NODE_PER_CAMERA,
    ONE_NODE,
    SAME_NODE,
    CamerasResult,
    measure_cameras_comparison,
)
from seg2track_ros.bench.report import RunInfo, cameras_table, cameras_targets, write_section
from seg2track_ros.cli import main

OBJECTS, FRAMES, WARMUP = 3, 2, 1


@pytest.fixture(scope="module")
def measured() -> list[CamerasResult]:
    """1 and 2 cameras, both layouts: 4 tracker_node processes (tiny SAM 2 at 64 px)."""
    return measure_cameras_comparison(
        [2, 1], OBJECTS, FRAMES, WARMUP, "tiny", 64, "cpu", frame_size=(96, 320), progress=str
    )


def test_both_layouts_track_every_frame_of_every_camera(measured):
    assert [(r.cameras, r.layout, r.nodes) for r in measured] == [
        (1, SAME_NODE, 1),
        (2, ONE_NODE, 1),
        (2, NODE_PER_CAMERA, 2),
    ]
    for r in measured:
        names = [f"cam{i}" for i in range(r.cameras)]
        # The nodes' own /diagnostics counted every frame sent, warm-up included.
        assert r.processed == {name: WARMUP + FRAMES for name in names}
        assert r.tracks_held == {name: OBJECTS for name in names}
        assert sorted(r.latencies_ms) == names
        assert all(len(v) == FRAMES and min(v) > 0 for v in r.latencies_ms.values())
        assert r.wall_s > 0 and r.frames_per_s > 0
        assert len(r.rss_bytes) == len(r.peak_rss_bytes) == len(r.node_pids) == r.nodes
        assert all(0 < rss <= peak for rss, peak in zip(r.rss_bytes, r.peak_rss_bytes, strict=True))
        assert r.device_memory_bytes is None and r.gpu_process_bytes is None  # CPU
    assert len(set(measured[2].node_pids)) == 2
    # the node for both cameras reports how many shared an engine call (its diagnostics)
    assert 1.0 <= measured[1].cameras_per_tick <= 2.0
    assert measured[0].cameras_per_tick is None and measured[2].cameras_per_tick is None
    # Two processes each load torch and a model: far more than one process holds.
    assert sum(measured[2].rss_bytes) > 1.5 * sum(measured[1].rss_bytes)


def test_the_section_has_a_row_per_layout_and_the_target_ratios(measured, tmp_path):
    table = cameras_table(measured)
    sent = WARMUP + FRAMES
    for row in (
        f"| 1 | {SAME_NODE} | 1 | {sent} / {sent} |",
        f"| 2 | {ONE_NODE} | 1 | {sent} / {sent} |",
        f"| 2 | {NODE_PER_CAMERA} | 2 | {sent} / {sent} |",
    ):
        assert row in table
    assert table.splitlines()[3].endswith(f" | {measured[1].cameras_per_tick:.2f} |")
    assert table.splitlines()[4].endswith(" | 1 |")
    assert table.count("n/a (CPU)") == 3
    targets = cameras_targets(measured)
    ratio = sum(measured[1].rss_bytes) / sum(measured[2].rss_bytes)
    assert f"| 2 | RSS {ratio:.2f} | <= 0.60 (1/2 = 0.50) |" in targets
    assert "| 1 |" not in targets  # one camera: one layout, nothing to compare

    out = tmp_path / "BENCHMARKS.md"
    info = RunInfo("seg2track bench ...", "quick", "tiny", 64, "cpu", False, only="cameras")
    section = write_section(out, info, [], [], [], tmp_path / "plots", cameras=measured)
    assert "<!-- bench:cpu-quick-tiny-64-cameras -->" in out.read_text()
    assert "### Several cameras: one node for N cameras vs one node per camera" in section
    assert table in section and targets in section


def _result(layout: str, cameras: int, rss_mib: int, frames_per_s: float) -> CamerasResult:
    nodes = cameras if layout == NODE_PER_CAMERA else 1
    frames = 10
    return CamerasResult(
        layout=layout,
        cameras=cameras,
        objects=1,
        warmup=1,
        frames=frames,
        wall_s=cameras * frames / frames_per_s,
        latencies_ms={f"cam{i}": [1.0] for i in range(cameras)},
        tracks_held={f"cam{i}": 1 for i in range(cameras)},
        processed={f"cam{i}": frames + 1 for i in range(cameras)},
        rss_bytes=[rss_mib * 2**20 // nodes] * nodes,
        peak_rss_bytes=[rss_mib * 2**20 // nodes] * nodes,
    )


def test_targets_say_met_or_not_from_the_ratios():
    results = [
        _result(ONE_NODE, 2, 590, 4.0),
        _result(NODE_PER_CAMERA, 2, 1000, 5.0),
        _result(ONE_NODE, 4, 1000, 6.0),
        _result(NODE_PER_CAMERA, 4, 4000, 3.0),
    ]
    rows = cameras_targets(results).splitlines()
    # 2 cameras: 0.59 of the memory is within 1.2/2; 0.8x the throughput misses >= 1x.
    assert rows[2] == "| 2 | RSS 0.59 | <= 0.60 (1/2 = 0.50) | yes | 0.80x | >= 1x | no |"
    # 4 cameras: 0.25 is within 1.2/4 = 0.30; 2x meets the CPU target.
    assert rows[3] == "| 4 | RSS 0.25 | <= 0.30 (1/4 = 0.25) | yes | 2.00x | >= 1x | yes |"
    results[2] = _result(ONE_NODE, 4, 1400, 6.0)
    assert "| 4 | RSS 0.35 | <= 0.30 (1/4 = 0.25) | no |" in cameras_targets(results)


def test_bench_command_runs_the_cameras_section_alone_in_its_own_section(
    measured, tmp_path, monkeypatch
):
    calls = []

    def fake_comparison(counts, objects, frames, warmup, model, image_size, device, **_):
        calls.append((counts, objects, frames, warmup, model, image_size, device))
        return measured  # the real measurement above stands in: this checks the wiring

    monkeypatch.setattr(cameras_bench, "measure_cameras_comparison", fake_comparison)
    out = tmp_path / "BENCHMARKS.md"
    full = "<!-- bench:cpu-quick-tiny-64 -->\n## a full run\n<!-- /bench:cpu-quick-tiny-64 -->\n"
    out.write_text("# Benchmarks\n\n" + full)
    args = ["bench", "--device", "cpu", "--image-size", "64", "--out", str(out)]
    args += ["--dds-profile", "default"]  # this process's later tests see no profile
    args += ["--plots", str(tmp_path / "plots"), "--skip", "speed", "memory", "latency", "host"]
    assert main([*args, "--camera-counts", "1", "2", "--camera-objects", "3"]) == 0
    assert calls == [([1, 2], 3, 3, 1, "tiny", 64, "cpu")]  # quick: 3 frames, 1 warm-up
    text = out.read_text()
    assert full in text  # the full run's section is left alone
    assert "<!-- bench:cpu-quick-tiny-64-cameras -->" in text
    assert f"| 2 | {NODE_PER_CAMERA} | 2 |" in text


def test_without_speed_memory_and_latency_host_and_cameras_get_a_section_each(
    measured, tmp_path, monkeypatch
):
    from seg2track_ros.bench import host as host_bench
    from seg2track_ros.bench.host import HOST_PHASES, OUTSIDE_SAM2, HostResult

    phases = {p: [1.0] for p in (*OUTSIDE_SAM2, *HOST_PHASES)}
    host_results = [HostResult("this tree", (375, 1242), 1, [5.0], [1.0], phases)]
    monkeypatch.setattr(host_bench, "measure_host_overhead", lambda *a, **k: host_results)
    monkeypatch.setattr(cameras_bench, "measure_cameras_comparison", lambda *a, **k: measured)
    out = tmp_path / "BENCHMARKS.md"
    args = ["bench", "--device", "cpu", "--image-size", "64", "--out", str(out)]
    args += ["--dds-profile", "default"]  # this process's later tests see no profile
    assert (
        main([*args, "--plots", str(tmp_path / "p"), "--skip", "speed", "memory", "latency"]) == 0
    )
    text = out.read_text()
    host = text.split("<!-- bench:cpu-quick-tiny-host -->")[1].split("<!-- /bench")[0]
    cams = text.split("<!-- bench:cpu-quick-tiny-64-cameras -->")[1].split("<!-- /bench")[0]
    assert "### Host overhead" in host and "Several cameras" not in host
    assert "### Several cameras" in cams and "Host overhead" not in cams


def test_the_bench_exports_its_fast_dds_profile(monkeypatch):
    """--dds-profile: the shipped large-message profile by default (a valid Fast DDS XML
    file with shared-memory segments of 32 MiB), Fast DDS's own with 'default', and a
    profile the user exported wins."""
    import xml.etree.ElementTree as ET

    from seg2track_ros.bench.command import (
        DDS_PROFILE_VARIABLES,
        LARGE_MESSAGES_PROFILE,
        use_dds_profile,
    )

    for variable in DDS_PROFILE_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    assert use_dds_profile("default") == "Fast DDS's defaults"
    assert not any(os.environ.get(v) for v in DDS_PROFILE_VARIABLES)
    assert use_dds_profile(LARGE_MESSAGES_PROFILE) == f"`config/{LARGE_MESSAGES_PROFILE}`"
    path = os.environ["FASTRTPS_DEFAULT_PROFILES_FILE"]
    assert os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] == path
    ns = {"f": "http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles"}
    root = ET.parse(path).getroot()
    assert root.find(".//f:transport_descriptor[f:type='SHM']/f:segment_size", ns).text == str(
        32 * 2**20
    )
    participant = root.find("f:participant", ns)
    assert participant.get("is_default_profile") == "true"
    monkeypatch.setenv("FASTRTPS_DEFAULT_PROFILES_FILE", "/mine.xml")
    assert use_dds_profile("default") == "/mine.xml (from FASTRTPS_DEFAULT_PROFILES_FILE)"
    for variable in DDS_PROFILE_VARIABLES:
        monkeypatch.delenv(variable)
    with pytest.raises(SystemExit, match="no such file"):
        use_dds_profile("/nonexistent.xml")
    # no room in /dev/shm for the shipped profile: Fast DDS's defaults, nothing exported
    used = use_dds_profile(LARGE_MESSAGES_PROFILE, shm=Path("/nonexistent-shm"))
    assert used.startswith("Fast DDS's defaults (/nonexistent-shm too small")
    assert not any(os.environ.get(v) for v in DDS_PROFILE_VARIABLES)
