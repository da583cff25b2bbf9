"""SAM 2.1 model sizes, checkpoint location, loading and download.

The four official SAM 2.1 checkpoints are ``torch.save({"model": state_dict}, path)``
files published by Meta. Loading checks that a file holds the configured size before
``load_state_dict`` so that a wrong file gives one clear error instead of hundreds of
shape mismatches. Downloading uses only the standard library (no extra dependency on a
robot), resumes an interrupted ``.part`` file and renames it into place only after its
sha256 matched, so a checkpoint file that exists is always complete.

torch is imported lazily: the download command must start fast and must not need it.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
import shlex
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from seg2track_ros import __version__

if TYPE_CHECKING:
    import torch

try:  # POSIX only; elsewhere two concurrent downloads of one file are not guarded
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class CheckpointError(RuntimeError):
    """Base of every checkpoint problem; the message says what to do about it."""


class UnknownModelError(CheckpointError):
    """A model size that is not one of the SAM 2.1 sizes."""


class CheckpointNotFoundError(CheckpointError):
    """The checkpoint file does not exist; the message gives the command that fetches it."""

    def __init__(self, path: Path, model: str) -> None:
        self.path = path
        self.model = model
        spec = CHECKPOINTS[model]
        command = download_command(model, path.parent)
        message = f"SAM 2.1 {model} checkpoint not found at {path}; get it with: {command}"
        if path.name != spec.filename:
            message += f" (it is saved as {spec.filename}: point the checkpoint setting there)"
        super().__init__(message)


class CheckpointSizeMismatchError(CheckpointError):
    """The file holds weights of another SAM 2.1 size than the configured one."""

    def __init__(self, path: Path, expected: str, found: str) -> None:
        self.path = path
        self.expected = expected
        self.found = found
        super().__init__(
            f"checkpoint {path} holds SAM 2.1 {found} weights but the configured model is"
            f" {expected}: set model to {found}, or use a {expected} checkpoint"
            f" ({download_command(expected, path.parent)})"
        )


class CorruptCheckpointError(CheckpointError):
    """The file is unreadable, not a torch checkpoint, or its keys do not fit SAM 2.1."""


class ChecksumMismatchError(CheckpointError):
    """A downloaded file's sha256 differs from the expected one (the file was deleted)."""


class DownloadError(CheckpointError):
    """A download failed: no network, an HTTP error, a timeout or a cut connection."""


@dataclass(frozen=True)
class CheckpointSpec:
    """One official SAM 2.1 model: how to build it, where its weights live, how to check them."""

    size: str
    # sam2's hydra config name, as build_sam2() takes it.
    config: str
    filename: str
    url: str
    # None would mean "not known": download_checkpoint then refuses to run (it never
    # installs a file it cannot verify).
    sha256: str | None
    num_bytes: int | None
    # Shape facts that tell the sizes apart (checked in test/test_checkpoints.py by
    # building each config): Hiera's patch embedding width and its number of blocks.
    trunk_embed_dim: int
    trunk_blocks: int


_BASE_URL = "https://dl.fbaipublicfiles.com/segment_anything_2/092824/"

# sha256 and sizes are the Git LFS pointers ("oid sha256:", "size") of the same files on
# the Hugging Face Hub:
# - tiny, small: the official repos facebook/sam2.1-hiera-tiny and facebook/sam2.1-hiera-small
#   (blob pages of sam2.1_hiera_{tiny,small}.pt show the SHA256), with the exact byte
#   counts from the pointer files of the mirror camenduru/sam2-1-hiera (commit cdd35a4),
#   whose hashes for these two files are identical to the official ones;
# - base_plus: camenduru/sam2-1-hiera (commit cdd35a4) and, independently, the upload of
#   Promethe-us/sam2 (commit d105770), both the same pointer;
# - large: camenduru/sam2-1-hiera (commit cdd35a4) and, independently, the upload in the
#   datasets/phenanthra/tmp discussion #2, both the same pointer.
# The Hub pages for facebook/sam2.1-hiera-base-plus and -large were not in reach when
# this table was written; the mirrors' tiny and small entries match the official repos.
CHECKPOINTS: dict[str, CheckpointSpec] = {
    "tiny": CheckpointSpec(
        size="tiny",
        config="configs/sam2.1/sam2.1_hiera_t.yaml",
        filename="sam2.1_hiera_tiny.pt",
        url=_BASE_URL + "sam2.1_hiera_tiny.pt",
        sha256="7402e0d864fa82708a20fbd15bc84245c2f26dff0eb43a4b5b93452deb34be69",
        num_bytes=156_008_466,
        trunk_embed_dim=96,
        trunk_blocks=12,
    ),
    "small": CheckpointSpec(
        size="small",
        config="configs/sam2.1/sam2.1_hiera_s.yaml",
        filename="sam2.1_hiera_small.pt",
        url=_BASE_URL + "sam2.1_hiera_small.pt",
        sha256="6d1aa6f30de5c92224f8172114de081d104bbd23dd9dc5c58996f0cad5dc4d38",
        num_bytes=184_416_285,
        trunk_embed_dim=96,
        trunk_blocks=16,
    ),
    "base_plus": CheckpointSpec(
        size="base_plus",
        config="configs/sam2.1/sam2.1_hiera_b+.yaml",
        filename="sam2.1_hiera_base_plus.pt",
        url=_BASE_URL + "sam2.1_hiera_base_plus.pt",
        sha256="a2345aede8715ab1d5d31b4a509fb160c5a4af1970f199d9054ccfb746c004c5",
        num_bytes=323_606_802,
        trunk_embed_dim=112,
        trunk_blocks=24,
    ),
    "large": CheckpointSpec(
        size="large",
        config="configs/sam2.1/sam2.1_hiera_l.yaml",
        filename="sam2.1_hiera_large.pt",
        url=_BASE_URL + "sam2.1_hiera_large.pt",
        sha256="2647878d5dfa5098f2f8649825738a9345572bae2d4350a2468587ece47dd318",
        num_bytes=898_083_611,
        trunk_embed_dim=144,
        trunk_blocks=48,
    ),
}

# The value of the checkpoint setting that asks for random weights.
RANDOM_WEIGHTS = "random"

_PATCH_EMBED_KEY = "image_encoder.trunk.patch_embed.proj.weight"
_BLOCK_KEY = re.compile(r"^image_encoder\.trunk\.blocks\.(\d+)\.")
# Present in SAM 2.1 models and absent from SAM 2.0 ones (compared by building both).
_SAM21_ONLY_KEYS = ("no_obj_embed_spatial", "obj_ptr_tpos_proj.weight")
_CHUNK = 1 << 20


def spec_for(model: str) -> CheckpointSpec:
    """The table entry of a size; UnknownModelError naming the valid sizes otherwise."""
    spec = CHECKPOINTS.get(model)
    if spec is None:
        raise UnknownModelError(
            f"unknown SAM 2.1 model size {model!r}; expected one of {', '.join(CHECKPOINTS)}"
        )
    return spec


def download_command(model: str, directory: Path) -> str:
    """The shell command that downloads `model` into `directory`."""
    return f"seg2track download-checkpoints --model {model} --dir {shlex.quote(str(directory))}"


def default_checkpoint_dir() -> Path:
    """$SEG2TRACK_CHECKPOINT_DIR, else $XDG_CACHE_HOME/seg2track/checkpoints (~/.cache)."""
    override = os.environ.get("SEG2TRACK_CHECKPOINT_DIR")
    if override:
        return Path(override).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says to ignore a relative value.
    base = Path(cache) if cache and os.path.isabs(cache) else Path.home() / ".cache"
    return base / "seg2track" / "checkpoints"


def resolve_checkpoint(model: str, checkpoint: str) -> Path | None:
    """The file the checkpoint setting names: "" = default location, "random" = None."""
    spec = spec_for(model)
    if checkpoint == "":
        return default_checkpoint_dir() / spec.filename
    if checkpoint == RANDOM_WEIGHTS:
        return None
    return Path(checkpoint).expanduser()


def detect_model_size(state_dict: Mapping[str, Any]) -> str:
    """Which SAM 2.1 size a state dict is for, from Hiera's embed width and block count."""
    patch_embed = state_dict.get(_PATCH_EMBED_KEY)
    shape = getattr(patch_embed, "shape", None)
    if not shape:
        raise CorruptCheckpointError(
            f"not a SAM 2 state dict: it has no tensor {_PATCH_EMBED_KEY!r}"
        )
    embed_dim = int(shape[0])
    blocks = {int(m.group(1)) for key in state_dict if (m := _BLOCK_KEY.match(key))}
    for spec in CHECKPOINTS.values():
        if (spec.trunk_embed_dim, spec.trunk_blocks) == (embed_dim, len(blocks)):
            return spec.size
    known = ", ".join(
        f"{s.size} ({s.trunk_embed_dim}, {s.trunk_blocks})" for s in CHECKPOINTS.values()
    )
    raise CorruptCheckpointError(
        f"the image encoder has embed dim {embed_dim} and {len(blocks)} blocks, which matches"
        f" no SAM 2.1 size (embed dim, blocks): {known}"
    )


def load_checkpoint(model: torch.nn.Module, path: Path, expected_size: str) -> None:
    """Load an official-format checkpoint into a built SAM 2.1 model, strictly.

    Raises CheckpointNotFoundError, CorruptCheckpointError or CheckpointSizeMismatchError.
    State dict shapes do not depend on the model's image_size (sam2 interpolates its
    position embeddings at run time), so a 1024 checkpoint loads into a smaller model.
    """
    import torch  # lazily: see the module docstring

    spec_for(expected_size)
    path = Path(path)
    if not path.exists():
        raise CheckpointNotFoundError(path, expected_size)
    if path.is_dir():
        raise CorruptCheckpointError(f"checkpoint path {path} is a directory, not a file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        raise CorruptCheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
    except Exception as exc:  # torch raises several unrelated types for a bad file
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CorruptCheckpointError(
            f"{path} is not a readable PyTorch checkpoint ({reason}); delete it and download"
            f" it again ({download_command(expected_size, path.parent)})"
        ) from exc
    if not isinstance(payload, Mapping) or "model" not in payload:
        found = sorted(map(str, payload))[:5] if isinstance(payload, Mapping) else []
        raise CorruptCheckpointError(
            f"{path} is a torch file but not a SAM 2 checkpoint: the official format is"
            f" {{'model': state_dict}}, this file has "
            + (f"keys {found}" if found else f"a {type(payload).__name__}")
        )
    state_dict = payload["model"]
    if not isinstance(state_dict, Mapping):
        raise CorruptCheckpointError(
            f"{path}: 'model' holds a {type(state_dict).__name__}, not a state dict"
        )

    found_size = detect_model_size(state_dict)
    if found_size != expected_size:
        raise CheckpointSizeMismatchError(path, expected_size, found_size)

    # Compare keys ourselves: torch's strict error is a wall of text, ours lists a few.
    wanted = set(model.state_dict())
    missing = sorted(wanted - set(state_dict))
    unexpected = sorted(set(state_dict) - wanted)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s) {_head(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s) {_head(unexpected)}")
        hint = ""
        if set(missing) & set(_SAM21_ONLY_KEYS) and not unexpected:
            hint = "; this looks like a SAM 2.0 checkpoint, seg2track uses SAM 2.1"
        raise CorruptCheckpointError(
            f"{path} does not fit the SAM 2.1 {expected_size} model: {'; '.join(parts)}{hint}"
        )
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:  # shape mismatches left after the checks above
        raise CorruptCheckpointError(
            f"{path} does not fit the SAM 2.1 {expected_size} model: {_first_lines(exc)}"
        ) from exc


def download_checkpoint(
    model: str,
    directory: Path,
    *,
    url: str | None = None,
    sha256: str | None = None,
    progress: bool = True,
    timeout: float = 30,
) -> Path:
    """Download a SAM 2.1 checkpoint into `directory` and return its path.

    An existing file with the right sha256 is returned as is. Otherwise the file is
    written to ``<name>.part`` (resuming one left by an interrupted run with an HTTP
    Range request), checked against the sha256 and only then renamed to its final name.
    `url` and `sha256` replace the table's values (tests, mirrors). `timeout` applies
    to connecting and to each read. A progress bar goes to stderr when `progress`.
    """
    spec = spec_for(model)
    expected_sha = (sha256 or spec.sha256 or "").lower()
    if not expected_sha:
        raise DownloadError(
            f"no sha256 is known for the SAM 2.1 {model} checkpoint, so a download could"
            " not be verified; refusing to download it (pass sha256= to download_checkpoint)"
        )
    source = url or spec.url
    # The table's byte count describes the table's file only.
    expected_bytes = spec.num_bytes if url is None and sha256 is None else None

    directory = Path(directory).expanduser()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointError(f"cannot create checkpoint directory {directory}: {exc}") from exc
    final = directory / spec.filename
    part = directory / (spec.filename + ".part")

    if final.is_file() and (expected_bytes is None or final.stat().st_size == expected_bytes):
        with final.open("rb") as existing:
            if _sha256_of(existing) == expected_sha:
                return final

    try:
        part_file = part.open("a+b")
    except OSError as exc:
        raise CheckpointError(f"cannot write {part}: {exc}") from exc
    with part_file, _exclusive_lock(part_file, part):
        offset = part_file.seek(0, os.SEEK_END)
        if expected_bytes is not None and offset > expected_bytes:
            _truncate(part_file)
            offset = 0
        if expected_bytes is None or offset < expected_bytes:
            try:
                _fetch(source, part_file, offset, timeout, progress, final, expected_bytes)
            except DownloadError:
                # Keep a partial file for the next run to resume; an empty one is litter.
                if part_file.seek(0, os.SEEK_END) == 0:
                    part.unlink(missing_ok=True)
                raise
        part_file.flush()
        os.fsync(part_file.fileno())
        actual_sha = _sha256_of(part_file)
        if actual_sha != expected_sha:
            part.unlink(missing_ok=True)
            raise ChecksumMismatchError(
                f"{source} gave a file with sha256 {actual_sha}, expected {expected_sha}; the"
                " download was deleted. Run the command again to download it from scratch;"
                " if it fails again the server or a proxy is serving another file"
            )
        os.replace(part, final)
    return final


def _fetch(
    url: str,
    out: IO[bytes],
    offset: int,
    timeout: float,
    progress: bool,
    destination: Path,
    expected_bytes: int | None,
) -> None:
    """Append the rest of `url` (from byte `offset`) to `out`, restarting if need be."""
    response = _open(url, offset, timeout, destination)
    if response is None:
        # 416: the server has nothing after `offset`; the .part is probably complete and
        # the checksum decides.
        return
    with response:
        status = response.status or 200  # file:// responses have no status
        total: int | None = None
        if offset and status == 206:
            start, total = _parse_content_range(response.headers.get("Content-Range"))
            if start != offset:
                # A server that answers another range than asked is not to be trusted
                # with a resume: start over with a plain request.
                response.close()
                _truncate(out)
                _fetch(url, out, 0, timeout, progress, destination, expected_bytes)
                return
        else:
            if offset:
                # The server ignored Range and sends the whole file: restart from zero.
                _truncate(out)
                offset = 0
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        total = total if total is not None else expected_bytes

        received = offset
        with _progress_bar(progress, destination.name, total, offset) as bar:
            try:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    received += len(chunk)
                    bar(len(chunk))
            except (OSError, http.client.HTTPException) as exc:
                raise DownloadError(
                    f"download of {url} was interrupted after {received} bytes"
                    f" ({_reason(exc)}); run the same command again to resume it"
                ) from exc
        if total is not None and received < total:
            raise DownloadError(
                f"the server closed the connection after {received} of {total} bytes of"
                f" {url}; run the same command again to resume the download"
            )


def _open(url: str, offset: int, timeout: float, destination: Path) -> Any:
    """The server's response; None for 416 on a resume, DownloadError for any failure."""
    headers = {
        "User-Agent": f"seg2track_ros/{__version__}",
        # A compressed body would make Range offsets and byte counts meaningless.
        "Accept-Encoding": "identity",
    }
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            return None
        raise DownloadError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise DownloadError(
            f"cannot download {url}: {_reason(exc.reason)}. Is this machine online (and, behind"
            f" a proxy, is https_proxy set)? Without network, copy the file to {destination}"
        ) from exc
    except (OSError, http.client.HTTPException) as exc:  # timeouts, resets while connecting
        raise DownloadError(f"cannot download {url}: {_reason(exc)}") from exc


def _parse_content_range(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, total size) of a ``bytes first-last/total`` header; None where absent."""
    match = re.fullmatch(r"\s*bytes\s+(\d+)-\d+/(\d+|\*)\s*", value or "")
    if match is None:
        return None, None
    total = match.group(2)
    return int(match.group(1)), (int(total) if total != "*" else None)


@contextlib.contextmanager
def _exclusive_lock(file: IO[bytes], path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the .part so that two runs never write into one file."""
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        raise DownloadError(
            f"another download is writing {path}; wait for it to finish and run again"
        ) from exc
    try:
        yield
    finally:
        fcntl.flock(file.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def _progress_bar(enabled: bool, label: str, total: int | None, initial: int) -> Iterator[Any]:
    """A callable that advances a tqdm bar on stderr (a no-op when disabled)."""
    if not enabled:
        yield lambda _n: None
        return
    from tqdm import tqdm

    with tqdm(
        total=total,
        initial=initial,
        desc=label,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
        leave=True,
    ) as bar:
        yield bar.update


def _truncate(file: IO[bytes]) -> None:
    file.seek(0)
    file.truncate()


def _sha256_of(file: IO[bytes]) -> str:
    file.seek(0)
    digest = hashlib.sha256()
    while chunk := file.read(_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def _reason(exc: object) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc).strip()
    return text or type(exc).__name__


def _head(keys: list[str], count: int = 5) -> str:
    shown = ", ".join(keys[:count])
    return f"[{shown}{', ...' if len(keys) > count else ''}]"


def _first_lines(exc: BaseException, count: int = 3) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return " ".join(lines[:count]) or type(exc).__name__
