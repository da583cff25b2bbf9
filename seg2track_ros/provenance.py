"""What produced a results file: the command, the parameters and the code version.

`seg2track run` and `seg2track replay` write ``<seq>.run.yaml`` next to ``<seq>.txt``;
`seg2track evaluate` reads it back into report.md and metrics.json, so a table always
says which settings it scores.
"""

from __future__ import annotations

import datetime
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

RECORD_SUFFIX = ".run.yaml"


def record_path(results: Path) -> Path:
    """``results/0002.txt`` -> ``results/0002.run.yaml``."""
    results = Path(results)
    return results.with_name(results.stem + RECORD_SUFFIX)


def command_line(argv: Sequence[str], prog: str = "seg2track") -> str:
    """The command as a shell would take it back."""
    return shlex.join([prog, *argv])


def code_version() -> str:
    """The package version, plus the git commit when running from a checkout."""
    from seg2track_ros import __version__

    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        command = ["git", "-C", str(root), *args]
        return subprocess.run(
            command, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__} (git {commit}{', modified' if dirty else ''})"


def write_record(
    results: Path,
    command: str,
    values: Mapping[str, Any],
    defaults: Mapping[str, Any],
    inputs: Mapping[str, Any] | None = None,
    unmapped_tracks: Mapping[str, int] | None = None,
) -> Path:
    """Write the record of `results`: the command, the parameters that differ from the
    defaults, every parameter, the inputs, the code version and how many tracks of each
    detector class the class map left out of the results."""
    import yaml

    changed = {k: v for k, v in sorted(values.items()) if defaults.get(k, object()) != v}
    record = {
        "command": command,
        "code": code_version(),
        "written": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "inputs": {k: str(v) for k, v in (inputs or {}).items() if v is not None},
        "unmapped_tracks": {str(k): int(v) for k, v in (unmapped_tracks or {}).items()},
        "parameters_changed": changed,
        "parameters": dict(sorted(values.items())),
    }
    path = record_path(results)
    path.write_text(yaml.safe_dump(record, sort_keys=False, allow_unicode=True))
    return path


def read_record(results: Path) -> dict[str, Any] | None:
    """The record next to `results`, or None when there is none (or it is unreadable)."""
    import yaml

    path = record_path(results)
    try:
        record = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
    return record if isinstance(record, dict) else None
