"""tracker_node's lifecycle does not leak: after any number of configure / activate /
deactivate / cleanup cycles the node holds exactly one subscription per input, one
diagnostics timer and the same publishers (issue 10, defects 1 and 8).

The node runs in this process so the test can see rclpy's own entities (timers are not
visible over the ROS graph); the subscription and publisher counts come from the graph.
"""

from __future__ import annotations

import ast
import gc
import warnings
from pathlib import Path

import pytest
from rclpy.exceptions import InvalidHandle
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.lifecycle.publisher import LifecyclePublisher
from rclpy.timer import Timer

from seg2track_ros.ros import tracker_node
from seg2track_ros.ros.tracker_node import TrackerNode

from node_harness import RANDOM_WEIGHT_PARAMS, in_process_node

OUTPUTS = ("tracks", "tracked_detections", "instance_labels")


@pytest.fixture
def node(ros_context):
    tracker = in_process_node(ros_context, "/cycled", RANDOM_WEIGHT_PARAMS)
    yield tracker
    tracker._stop_processing()
    tracker.destroy_node()


def _alive(entity) -> bool:
    try:
        with entity.handle:
            return True
    except InvalidHandle:
        return False


def _live_objects(kind: type) -> list:
    """Every live object of ``kind``, wherever it is referenced (a leaked entity is one
    the node no longer lists but something still holds)."""
    gc.collect()
    with warnings.catch_warnings():  # isinstance on some torch module objects warns
        warnings.simplefilter("ignore")
        return [o for o in gc.get_objects() if isinstance(o, kind)]


def _live_timers(node: TrackerNode) -> list[Timer]:
    """This node's rclpy Timers that were not destroyed."""
    mine = {node._on_sync_timer, node._publish_diagnostics}
    return [t for t in _live_objects(Timer) if _alive(t) and t.callback in mine]


def _live_lifecycle_publishers() -> int:
    return len(_live_objects(LifecyclePublisher))


def _diagnostics_publishers(node: TrackerNode) -> int:
    return sum(
        1
        for info in node.get_publishers_info_by_topic("/diagnostics")
        if info.node_name == node.get_name() and info.node_namespace == node.get_namespace()
    )


def _counts(node: TrackerNode, lifecycle_baseline: int = 0) -> dict[str, int]:
    """``lifecycle_baseline``: live LifecyclePublishers not of this node (other tests'
    nodes that are not collected yet), subtracted from the process-wide count."""
    timers = _live_timers(node)
    return {
        "image_subscriptions": node.count_subscribers(node.resolve_topic_name("image")),
        "detections_subscriptions": node.count_subscribers(node.resolve_topic_name("detections")),
        **{f"{t}_publishers": node.count_publishers(node.resolve_topic_name(t)) for t in OUTPUTS},
        "diagnostics_publishers": _diagnostics_publishers(node),
        "diagnostics_timers": sum(t.callback == node._publish_diagnostics for t in timers),
        "sync_timers": sum(t.callback == node._on_sync_timer for t in timers),
        "lifecycle_publishers": _live_lifecycle_publishers() - lifecycle_baseline,
    }


CONFIGURED = {
    "image_subscriptions": 1,
    "detections_subscriptions": 1,
    **{f"{t}_publishers": 1 for t in OUTPUTS},
    "diagnostics_publishers": 1,
    "diagnostics_timers": 1,
    "sync_timers": 1,
    "lifecycle_publishers": len(OUTPUTS),
}
UNCONFIGURED = {key: 0 for key in CONFIGURED}


def _ok(result) -> None:
    assert result == TransitionCallbackReturn.SUCCESS, result


def test_cycles_keep_one_subscription_per_input_one_timer_and_no_stale_publishers(node):
    others = _live_lifecycle_publishers()
    assert _counts(node, others) == UNCONFIGURED
    _ok(node.trigger_configure())
    assert _counts(node, others) == CONFIGURED
    for cycle in range(3):
        _ok(node.trigger_activate())
        assert _counts(node, others) == CONFIGURED, f"active, cycle {cycle}"
        _ok(node.trigger_deactivate())
        assert _counts(node, others) == CONFIGURED, f"inactive, cycle {cycle}"
        _ok(node.trigger_cleanup())
        assert _counts(node, others) == UNCONFIGURED, f"after cleanup, cycle {cycle}"
        _ok(node.trigger_configure())  # cleanup followed by configure
        assert _counts(node, others) == CONFIGURED, f"configured again, cycle {cycle}"
    # The node's own entity lists agree: each input and the diagnostics timer once.
    topics = [s.topic_name for s in node.subscriptions]
    assert topics.count("/cycled/image") == topics.count("/cycled/detections") == 1, topics
    assert sum(t.callback == node._publish_diagnostics for t in node.timers) == 1


def test_no_tracker_node_attribute_shadows_rclpy_internals(ros_context):
    """rclpy keeps a node's entities in private attributes (``_subscriptions``,
    ``_timers``, ``_publishers``, ...). A subclass that assigns one of those names
    replaces rclpy's list, and destroy_* then skips entities (the root cause of the
    leaks). No attribute the tracker node assigns may be one of rclpy's."""
    from rclpy.lifecycle import LifecycleNode

    plain = LifecycleNode("plain_lifecycle", context=ros_context)
    rclpy_names = set(vars(plain)) | set(dir(LifecycleNode))
    plain.destroy_node()
    source = Path(tracker_node.__file__).read_text()
    assigned = {
        target.attr
        for target in ast.walk(ast.parse(source))
        if isinstance(target, ast.Attribute)
        and isinstance(target.ctx, ast.Store)
        and isinstance(target.value, ast.Name)
        and target.value.id == "self"
    }
    assert assigned, "no self.<name> assignments found: the check would be vacuous"
    assert not (assigned & rclpy_names), sorted(assigned & rclpy_names)
