"""The console scripts ``tracker_node`` and ``results_writer`` (setup.py).

Each installs the SIGINT/SIGTERM handlers (``shutdown.ShutdownSignals``) first, before
importing rclpy, torch and the node: a signal during those imports then ends the process
quietly (exit 0), as one during the rest of start-up does, instead of a KeyboardInterrupt
traceback. After ``main`` has torn the node down in order, the process leaves at once
(``shutdown.exit_now``) instead of through the interpreter's finalisation.
"""

from __future__ import annotations

from seg2track_ros.ros.shutdown import ShutdownSignals, StartupInterrupted, exit_now


def tracker_node() -> None:
    _run("seg2track_ros.ros.tracker_node")


def results_writer() -> None:
    _run("seg2track_ros.ros.results_writer")


def _run(module: str) -> None:
    """Handlers first, then the (slow) import of `module`, its ``main``, a quick exit."""
    import contextlib
    import importlib

    signals = ShutdownSignals()
    signals.install()
    with contextlib.suppress(StartupInterrupted):  # before main's own handling begins
        importlib.import_module(module).main(signals=signals)
    exit_now(0)
