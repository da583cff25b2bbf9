"""Clean process shutdown for the node executables, on one or several SIGINTs or SIGTERMs.

rclpy's default signal handlers (installed by ``rclpy.init``) shut the context down from
a separate thread the moment a signal arrives, whatever the process is doing: a worker
thread that publishes then fails with ``RCLError: publisher's context is invalid``, an
executor building its wait set fails with ``failed to initialize wait set``, and what is
logged while shutting down cannot reach /rosout ("Failed to publish log message to
rosout"). Python's own SIGINT handler raises KeyboardInterrupt wherever the main thread
is, so a second SIGINT (the terminal's Ctrl-C reaches the node, then ``ros2 launch``
sends its own) can land inside ``destroy_node()``: a traceback and exit code -2.

Here rclpy installs no signal handlers (``SignalHandlerOptions.NO``). A signal only
*requests* shutdown; the main thread, which is the only thread that touches the
executor, then tears down in order: stop the node's worker threads, destroy the node
(its publishers and subscriptions), shut the context down. Signals that arrive after
the first are recorded and otherwise ignored, so nothing interrupts the teardown.

Before the node spins (``rclpy.init``, creating the node, loading the model) the first
signal interrupts start-up instead (``StartupInterrupted``), so a node killed while a
large model loads exits at once rather than after the load. The executables' entry points
(``entry_points.py``) install the handlers before importing anything heavy, so start-up
covers the imports too. This module imports rclpy only where it uses it, for that reason.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

# How often the spinning main thread looks at the shutdown request (seconds). Python runs
# signal handlers only when the main thread executes Python code, so the executor must
# not block for longer than this.
POLL_PERIOD_S = 0.1
HANDLED = (signal.SIGINT, signal.SIGTERM)


class StartupInterrupted(BaseException):
    """A SIGINT or SIGTERM arrived before the node was spinning. A BaseException, like
    KeyboardInterrupt, so that no ``except Exception`` on the way swallows it."""


class ShutdownSignals:
    """SIGINT and SIGTERM handling for one executable (install once, in the main thread)."""

    def __init__(self) -> None:
        self._requested = threading.Event()
        self._interrupt_startup = True
        self.received: list[str] = []  # signal names, in order of arrival

    def install(self) -> None:
        for signum in HANDLED:
            signal.signal(signum, self._on_signal)

    @property
    def requested(self) -> bool:
        return self._requested.is_set()

    def _on_signal(self, signum: int, frame) -> None:
        self.received.append(signal.Signals(signum).name)
        self._requested.set()
        if self._interrupt_startup:
            self._interrupt_startup = False
            raise StartupInterrupted(signal.Signals(signum).name)

    def started(self) -> None:
        """Start-up is over: from now on a signal only requests shutdown. Also called
        first thing in teardown, so that nothing interrupts it."""
        self._interrupt_startup = False

    def spin(self, executor, context=None, until=None) -> None:
        """Run the executor's callbacks until a signal requests shutdown, the context is
        shut down by someone else, or ``until()`` (when given) returns true."""
        import rclpy

        context = context or rclpy.get_default_context()
        while not self.requested and context.ok() and not (until is not None and until()):
            executor.spin_once(timeout_sec=POLL_PERIOD_S)


def init(args=None) -> None:
    """``rclpy.init`` without rclpy's signal handlers (``ShutdownSignals`` handles them)."""
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)


def exit_now(code: int = 0) -> None:
    """Leave the process at once (``os._exit``) once the node is torn down, after
    flushing what was printed and logged.

    What finalisation would still do is free memory: with torch loaded it took 8 s on the
    loaded 2-core test machine (1.5 s without torch), longer than ``ros2 launch`` waits
    before it sends SIGTERM (5 s), and by then Python has put the default handlers back,
    so the process would die of the signal. A worker thread still inside a long torch
    call (see TrackerNode.close) could also abort the interpreter's finalisation.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
