"""Checkpoint table, loading into real sam2 models, downloads from a local server, the CLI.

Models are built with random weights at image_size 128 (the state dict does not depend on
it, which test_state_dict_shapes_do_not_depend_on_image_size checks). Downloads talk to a
stdlib HTTP server on 127.0.0.1 only.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from sam2.build_sam import build_sam2

from seg2track_ros import cli
from seg2track_ros.engine.checkpoints import (
    CHECKPOINTS,
    CheckpointNotFoundError,
    CheckpointSizeMismatchError,
    ChecksumMismatchError,
    CorruptCheckpointError,
    DownloadError,
    UnknownModelError,
    default_checkpoint_dir,
    detect_model_size,
    download_checkpoint,
    load_checkpoint,
    resolve_checkpoint,
)
from seg2track_ros.engine.config import MODEL_SIZES

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_IMAGE_SIZE = 128


def build_model(size: str, seed: int, image_size: int = TEST_IMAGE_SIZE) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_sam2(
        CHECKPOINTS[size].config,
        ckpt_path=None,
        device="cpu",
        mode="eval",
        hydra_overrides_extra=[f"++model.image_size={image_size}"],
    )


@pytest.fixture(scope="session")
def models() -> dict[str, torch.nn.Module]:
    """One random model of each size, built once from the table's config names."""
    return {size: build_model(size, seed=index) for index, size in enumerate(CHECKPOINTS)}


def save(path: Path, payload: object) -> Path:
    torch.save(payload, path)
    return path


# --- the table ---------------------------------------------------------------------------


def test_table_lists_the_four_sizes_the_config_accepts():
    assert tuple(CHECKPOINTS) == MODEL_SIZES
    for size, spec in CHECKPOINTS.items():
        assert spec.size == size
        assert spec.url == (
            f"https://dl.fbaipublicfiles.com/segment_anything_2/092824/{spec.filename}"
        )
        assert re.fullmatch(r"sam2\.1_hiera_\w+\.pt", spec.filename)
        assert re.fullmatch(r"[0-9a-f]{64}", spec.sha256)
        assert spec.num_bytes > 100_000_000
    assert len({spec.sha256 for spec in CHECKPOINTS.values()}) == 4


def test_table_shape_facts_match_the_built_models(models):
    for size, model in models.items():
        state = model.state_dict()
        spec = CHECKPOINTS[size]
        assert state["image_encoder.trunk.patch_embed.proj.weight"].shape[0] == spec.trunk_embed_dim
        blocks = {
            int(k.split(".")[3]) for k in state if k.startswith("image_encoder.trunk.blocks.")
        }
        assert blocks == set(range(spec.trunk_blocks))


def test_detect_model_size_on_all_four_sizes(models):
    for size, model in models.items():
        assert detect_model_size(model.state_dict()) == size


def test_detect_model_size_rejects_other_state_dicts(models):
    with pytest.raises(CorruptCheckpointError, match="not a SAM 2 state dict"):
        detect_model_size({"weight": torch.zeros(3)})
    # tiny's width with a block count no SAM 2.1 size has
    state = dict(models["tiny"].state_dict())
    state = {k: v for k, v in state.items() if not k.startswith("image_encoder.trunk.blocks.11.")}
    with pytest.raises(CorruptCheckpointError, match="embed dim 96 and 11 blocks"):
        detect_model_size(state)


def test_state_dict_shapes_do_not_depend_on_image_size(models):
    full = build_model("tiny", seed=0, image_size=1024).state_dict()
    small = models["tiny"].state_dict()
    assert full.keys() == small.keys()
    assert {k: v.shape for k, v in full.items()} == {k: v.shape for k, v in small.items()}


# --- locating checkpoints ----------------------------------------------------------------


def test_default_checkpoint_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("SEG2TRACK_CHECKPOINT_DIR", str(tmp_path / "mine"))
    assert default_checkpoint_dir() == tmp_path / "mine"
    monkeypatch.delenv("SEG2TRACK_CHECKPOINT_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_checkpoint_dir() == tmp_path / "xdg" / "seg2track" / "checkpoints"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_checkpoint_dir() == tmp_path / "home" / ".cache" / "seg2track" / "checkpoints"


def test_resolve_checkpoint(monkeypatch, tmp_path):
    monkeypatch.setenv("SEG2TRACK_CHECKPOINT_DIR", str(tmp_path))
    assert resolve_checkpoint("large", "") == tmp_path / "sam2.1_hiera_large.pt"
    assert resolve_checkpoint("tiny", "random") is None
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_checkpoint("tiny", "~/w.pt") == tmp_path / "home" / "w.pt"
    assert resolve_checkpoint("tiny", "/abs/w.pt") == Path("/abs/w.pt")
    with pytest.raises(UnknownModelError, match="tiny, small, base_plus, large"):
        resolve_checkpoint("huge", "")


# --- loading -----------------------------------------------------------------------------


def test_saved_checkpoint_reproduces_the_model(models, tmp_path):
    source = models["tiny"]
    path = save(tmp_path / "tiny.pt", {"model": source.state_dict()})
    fresh = build_model("tiny", seed=1234)
    image = torch.randn(
        1, 3, TEST_IMAGE_SIZE, TEST_IMAGE_SIZE, generator=torch.Generator().manual_seed(7)
    )
    with torch.no_grad():
        expected = source.image_encoder(image)
        before = fresh.image_encoder(image)
        assert not torch.equal(before["vision_features"], expected["vision_features"])

        load_checkpoint(fresh, path, "tiny")
        got = fresh.image_encoder(image)
    assert torch.equal(got["vision_features"], expected["vision_features"])
    for level_got, level_expected in zip(
        got["backbone_fpn"], expected["backbone_fpn"], strict=True
    ):
        assert torch.equal(level_got, level_expected)
    loaded = fresh.state_dict()
    for name, tensor in source.state_dict().items():
        assert torch.equal(loaded[name], tensor), name


def test_missing_file_names_the_path_and_the_download_command(models, tmp_path):
    path = tmp_path / "nowhere" / "sam2.1_hiera_tiny.pt"
    with pytest.raises(CheckpointNotFoundError) as caught:
        load_checkpoint(models["tiny"], path, "tiny")
    message = str(caught.value)
    assert str(path) in message
    assert f"seg2track download-checkpoints --model tiny --dir {path.parent}" in message


def test_small_weights_for_a_tiny_model_name_both_sizes(models, tmp_path):
    path = save(tmp_path / "small.pt", {"model": models["small"].state_dict()})
    target = build_model("tiny", seed=5)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(CheckpointSizeMismatchError) as caught:
        load_checkpoint(target, path, "tiny")
    assert (caught.value.expected, caught.value.found) == ("tiny", "small")
    assert "tiny" in str(caught.value) and "small" in str(caught.value)
    # refused before anything was loaded
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())


def test_random_bytes_are_a_corrupt_checkpoint(models, tmp_path):
    path = tmp_path / "junk.pt"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(CorruptCheckpointError, match="not a readable PyTorch checkpoint"):
        load_checkpoint(models["tiny"], path, "tiny")


def test_torch_file_without_model_entry_is_corrupt(models, tmp_path):
    path = save(tmp_path / "bare.pt", {"state_dict": {"a": torch.zeros(1)}})
    with pytest.raises(CorruptCheckpointError, match=r"\{'model': state_dict\}.*state_dict"):
        load_checkpoint(models["tiny"], path, "tiny")
    path = save(tmp_path / "tensor.pt", torch.zeros(3))
    with pytest.raises(CorruptCheckpointError, match="Tensor"):
        load_checkpoint(models["tiny"], path, "tiny")


def test_key_and_shape_mismatches_are_corrupt(models, tmp_path):
    target = build_model("tiny", seed=9)
    tiny = models["tiny"].state_dict()

    sam20_like = {
        k: v for k, v in tiny.items() if not k.startswith(("no_obj_embed", "obj_ptr_tpos"))
    }
    path = save(tmp_path / "old.pt", {"model": sam20_like})
    with pytest.raises(CorruptCheckpointError, match=r"3 missing key\(s\).*SAM 2\.0 checkpoint"):
        load_checkpoint(target, path, "tiny")

    extra = {**tiny, "extra_head.weight": torch.zeros(2)}
    path = save(tmp_path / "extra.pt", {"model": extra})
    with pytest.raises(
        CorruptCheckpointError, match=r"1 unexpected key\(s\) \[extra_head\.weight\]"
    ):
        load_checkpoint(target, path, "tiny")

    reshaped = {**tiny, "sam_mask_decoder.iou_token.weight": torch.zeros(2, 3)}
    path = save(tmp_path / "shape.pt", {"model": reshaped})
    with pytest.raises(CorruptCheckpointError, match="iou_token"):
        load_checkpoint(target, path, "tiny")


# --- downloads ---------------------------------------------------------------------------


@dataclass
class FileServer:
    """What the local server serves and what it was asked."""

    files: dict[str, bytes] = field(default_factory=dict)
    ignore_range: bool = False
    # Send only this many body bytes, then close (the headers promise the full length).
    cut_after: int | None = None
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    port: int = 0

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def ranges(self) -> list[str | None]:
        return [value for _path, value in self.requests]


class _Handler(BaseHTTPRequestHandler):
    state: FileServer

    def do_GET(self) -> None:
        state = self.server.state  # type: ignore[attr-defined]
        range_header = self.headers.get("Range")
        state.requests.append((self.path, range_header))
        data = state.files.get(self.path.lstrip("/"))
        if data is None:
            self.send_error(404, "Not Found")
            return
        start, status = 0, 200
        if range_header and not state.ignore_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", range_header).group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        body = data[start:]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if state.cut_after is not None:
            body = body[: state.cut_after]
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        pass


@pytest.fixture
def server() -> Iterator[FileServer]:
    state = FileServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.state = state  # type: ignore[attr-defined]
    state.port = httpd.server_address[1]
    # a short poll interval: shutdown() waits for the next poll
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


PAYLOAD = os.urandom(300 * 1024)
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()
TINY_FILE = CHECKPOINTS["tiny"].filename


def fetch(server: FileServer, directory: Path, **kwargs) -> Path:
    kwargs.setdefault("url", server.url(TINY_FILE))
    kwargs.setdefault("sha256", PAYLOAD_SHA)
    return download_checkpoint("tiny", directory, progress=False, timeout=5, **kwargs)


def test_download_succeeds(server, tmp_path):
    server.files[TINY_FILE] = PAYLOAD
    path = fetch(server, tmp_path / "new" / "dir")
    assert path == tmp_path / "new" / "dir" / TINY_FILE
    assert path.read_bytes() == PAYLOAD
    assert os.listdir(path.parent) == [TINY_FILE]
    assert server.ranges() == [None]


def test_present_intact_file_is_not_downloaded_again(server, tmp_path):
    server.files[TINY_FILE] = PAYLOAD
    (tmp_path / TINY_FILE).write_bytes(PAYLOAD)
    assert fetch(server, tmp_path).read_bytes() == PAYLOAD
    assert server.requests == []
    # a damaged one is replaced
    (tmp_path / TINY_FILE).write_bytes(b"damaged")
    assert fetch(server, tmp_path).read_bytes() == PAYLOAD
    assert len(server.requests) == 1


def test_checksum_mismatch_leaves_no_file(server, tmp_path):
    server.files[TINY_FILE] = PAYLOAD
    with pytest.raises(ChecksumMismatchError) as caught:
        fetch(server, tmp_path, sha256="0" * 64)
    assert PAYLOAD_SHA in str(caught.value) and "0" * 64 in str(caught.value)
    assert os.listdir(tmp_path) == []


def test_http_404_is_a_download_error(server, tmp_path):
    with pytest.raises(DownloadError, match=r"HTTP 404") as caught:
        fetch(server, tmp_path)
    assert server.url(TINY_FILE) in str(caught.value)
    assert os.listdir(tmp_path) == []


def test_resume_from_a_partial_file(server, tmp_path):
    server.files[TINY_FILE] = PAYLOAD
    half = len(PAYLOAD) // 2
    (tmp_path / f"{TINY_FILE}.part").write_bytes(PAYLOAD[:half])
    path = fetch(server, tmp_path)
    assert server.ranges() == [f"bytes={half}-"]
    assert path.read_bytes() == PAYLOAD
    assert os.listdir(tmp_path) == [TINY_FILE]


def test_cut_connection_keeps_the_part_and_the_next_run_resumes(server, tmp_path):
    server.files[TINY_FILE] = PAYLOAD
    server.cut_after = 100_000
    with pytest.raises(DownloadError, match=r"after 100000 of 307200 bytes.*resume"):
        fetch(server, tmp_path)
    assert (tmp_path / f"{TINY_FILE}.part").read_bytes() == PAYLOAD[:100_000]
    assert not (tmp_path / TINY_FILE).exists()

    server.cut_after = None
    assert fetch(server, tmp_path).read_bytes() == PAYLOAD
    assert server.ranges() == [None, "bytes=100000-"]
    assert os.listdir(tmp_path) == [TINY_FILE]


def test_server_that_ignores_range_restarts_from_zero(server, tmp_path):
    server.files[TINY_FILE] = PAYLOAD
    server.ignore_range = True
    # a stale partial file with wrong bytes: appending to it would corrupt the result
    (tmp_path / f"{TINY_FILE}.part").write_bytes(b"x" * 1000)
    path = fetch(server, tmp_path)
    assert server.ranges() == ["bytes=1000-"]
    assert path.read_bytes() == PAYLOAD


def test_complete_part_file_with_416_is_verified_and_kept(server, tmp_path):
    server.files[TINY_FILE] = PAYLOAD
    (tmp_path / f"{TINY_FILE}.part").write_bytes(PAYLOAD)
    assert fetch(server, tmp_path).read_bytes() == PAYLOAD
    assert server.ranges() == [f"bytes={len(PAYLOAD)}-"]


def test_table_size_lets_a_complete_part_skip_the_network(server, tmp_path, monkeypatch):
    monkeypatch.setitem(
        CHECKPOINTS,
        "tiny",
        replace(
            CHECKPOINTS["tiny"],
            url=server.url(TINY_FILE),
            sha256=PAYLOAD_SHA,
            num_bytes=len(PAYLOAD),
        ),
    )
    (tmp_path / f"{TINY_FILE}.part").write_bytes(PAYLOAD)
    path = download_checkpoint("tiny", tmp_path, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert server.requests == []


def test_no_network_is_a_clear_download_error(tmp_path):
    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/{TINY_FILE}"
    with pytest.raises(DownloadError) as caught:
        download_checkpoint("tiny", tmp_path, url=url, sha256=PAYLOAD_SHA, progress=False)
    message = str(caught.value)
    assert url in message
    assert "refused" in message.lower()
    assert "online" in message
    assert os.listdir(tmp_path) == []


def test_silent_server_times_out(tmp_path):
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/{TINY_FILE}"
        with pytest.raises(DownloadError, match="timed out"):
            download_checkpoint(
                "tiny", tmp_path, url=url, sha256=PAYLOAD_SHA, progress=False, timeout=0.5
            )


def test_unknown_hash_refuses_to_download(server, tmp_path, monkeypatch):
    monkeypatch.setitem(CHECKPOINTS, "tiny", replace(CHECKPOINTS["tiny"], sha256=None))
    with pytest.raises(DownloadError, match="no sha256 is known"):
        download_checkpoint("tiny", tmp_path, url=server.url(TINY_FILE), progress=False)
    assert server.requests == []


def test_progress_bar_goes_to_stderr(server, tmp_path, capsys):
    server.files[TINY_FILE] = PAYLOAD
    download_checkpoint("tiny", tmp_path, url=server.url(TINY_FILE), sha256=PAYLOAD_SHA)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert TINY_FILE in captured.err and "300k" in captured.err


# --- the command line --------------------------------------------------------------------


def serve_table(server: FileServer, monkeypatch, sizes=tuple(CHECKPOINTS)) -> dict[str, bytes]:
    """Point the table at the local server, with a distinct small payload per size."""
    payloads = {}
    for index, size in enumerate(sizes):
        spec = CHECKPOINTS[size]
        payloads[size] = PAYLOAD[index * 1000 :]
        server.files[spec.filename] = payloads[size]
        monkeypatch.setitem(
            CHECKPOINTS,
            size,
            replace(
                spec,
                url=server.url(spec.filename),
                sha256=hashlib.sha256(payloads[size]).hexdigest(),
                num_bytes=len(payloads[size]),
            ),
        )
    return payloads


def test_cli_downloads_one_model(server, tmp_path, monkeypatch, capsys):
    payloads = serve_table(server, monkeypatch, sizes=("tiny",))
    code = cli.main(["download-checkpoints", "--model", "tiny", "--dir", str(tmp_path), "-q"])
    out = capsys.readouterr().out
    assert code == 0
    assert out == f"tiny: {tmp_path / TINY_FILE}\n"
    assert (tmp_path / TINY_FILE).read_bytes() == payloads["tiny"]


def test_cli_downloads_all_models_to_the_default_dir(server, tmp_path, monkeypatch, capsys):
    payloads = serve_table(server, monkeypatch)
    monkeypatch.setenv("SEG2TRACK_CHECKPOINT_DIR", str(tmp_path))
    assert cli.main(["download-checkpoints", "--model", "all", "-q"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4
    for size, payload in payloads.items():
        assert (tmp_path / CHECKPOINTS[size].filename).read_bytes() == payload


def test_cli_error_is_one_line_and_status_1(server, tmp_path, monkeypatch, capsys):
    serve_table(server, monkeypatch, sizes=("tiny",))
    del server.files[TINY_FILE]
    code = cli.main(["download-checkpoints", "--model", "tiny", "--dir", str(tmp_path), "-q"])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("seg2track: error: cannot download http://127.0.0.1:")
    assert "HTTP 404" in lines[0]
    assert "Traceback" not in captured.err


def test_cli_usage(capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main(["--help"])
    assert caught.value.code == 0
    assert "download-checkpoints" in capsys.readouterr().out
    with pytest.raises(SystemExit) as caught:
        cli.main(["download-checkpoints", "--help"])
    assert caught.value.code == 0
    help_text = capsys.readouterr().out
    assert "{tiny,small,base_plus,large,all}" in help_text and "--dir" in help_text
    with pytest.raises(SystemExit) as caught:
        cli.main(["download-checkpoints", "--model", "huge"])
    assert caught.value.code == 2


def test_python_dash_m_runs_the_cli():
    result = subprocess.run(
        [sys.executable, "-m", "seg2track_ros.cli", "download-checkpoints", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: seg2track download-checkpoints")


def test_setup_py_declares_the_console_script():
    setup_py = (REPO_ROOT / "setup.py").read_text()
    assert '"seg2track = seg2track_ros.cli:main"' in setup_py


def test_cli_and_checkpoints_import_neither_rclpy_nor_torch():
    # the engine is ROS-free, and `seg2track --help` must not wait for torch
    code = (
        "import sys, seg2track_ros.cli, seg2track_ros.engine.checkpoints;"
        "print(sorted(m for m in ('rclpy', 'torch', 'sam2') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
