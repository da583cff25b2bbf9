"""The ``seg2track`` command: parses arguments and calls the library; nothing else.

Each subcommand is one ``add_<name>(subparsers)`` function, registered with
``@subcommand``, that builds its parser and sets ``handler`` to a ``run_<name>(args) ->
int`` function. Library code raises typed errors; this is the one place that prints
them (one line on stderr) and turns them into exit status 1. Heavy imports (torch, sam2,
rclpy) belong inside the ``run_`` functions so that ``seg2track --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from seg2track_ros import __version__
from seg2track_ros.engine import checkpoints

PROG = "seg2track"

# Errors a user can act on: printed as one line, exit status 1. Add a subcommand's own
# error base here rather than catching it in the subcommand.
USER_ERRORS: tuple[type[Exception], ...] = (checkpoints.CheckpointError,)

_SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []


def subcommand(
    add: Callable[[argparse._SubParsersAction], None],
) -> Callable[[argparse._SubParsersAction], None]:
    """Register a function that adds one subcommand's parser (in registration order)."""
    _SUBCOMMANDS.append(add)
    return add


@subcommand
def add_download_checkpoints(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "download-checkpoints",
        help="download official SAM 2.1 checkpoints (sha256-checked, resumable)",
        description=(
            "Download official SAM 2.1 checkpoints from Meta, check their sha256 and store"
            " them where the tracker looks by default. An interrupted download resumes when"
            " the command is run again; a file already present and intact is kept."
        ),
    )
    parser.add_argument(
        "--model",
        required=True,
        choices=[*checkpoints.CHECKPOINTS, "all"],
        help="which model size to download, or all four",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help=(
            "directory to store the files in (default: $SEG2TRACK_CHECKPOINT_DIR, else"
            f" $XDG_CACHE_HOME/seg2track/checkpoints, now {checkpoints.default_checkpoint_dir()})"
        ),
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds to wait for the server when connecting and per read (default: 30)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run_download_checkpoints)


def run_download_checkpoints(args: argparse.Namespace) -> int:
    directory = args.dir if args.dir is not None else checkpoints.default_checkpoint_dir()
    sizes = list(checkpoints.CHECKPOINTS) if args.model == "all" else [args.model]
    for size in sizes:
        path = checkpoints.download_checkpoint(
            size, directory, progress=not args.quiet, timeout=args.timeout
        )
        print(f"{size}: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Seg2Track: SAM 2 based multi-object tracking and segmentation tools.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for add in _SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (argparse exits 2 on a usage error)."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except USER_ERRORS as exc:
        # One line, whatever the message holds, so scripts and logs stay readable.
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
