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
    signals = ShutdownSignals()
    signals.install()
    try:
        from seg2track_ros.ros.tracker_node import main

        main(signals=signals)
    except StartupInterrupted:  # before main's own handling begins
        pass
    exit_now(0)


def results_writer() -> None:
    signals = ShutdownSignals()
    signals.install()
    try:
        from seg2track_ros.ros.results_writer import main

        main(signals=signals)
    except StartupInterrupted:  # before main's own handling begins
        pass
    exit_now(0)
