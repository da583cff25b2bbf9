"""Evaluation of tracking results against KITTI MOTS or MOTS20 ground truth (ROS-free).

``evaluate`` scores ``<seq>.txt`` result files with trackeval (HOTA, CLEAR, Identity),
``report`` writes metrics.json, report.md and plots, and ``command_evaluate`` is the
``seg2track evaluate`` command. trackeval and matplotlib are imported only when used, so
importing this package stays cheap.
"""

from seg2track_ros.evaluation.evaluate import (
    BENCHMARKS,
    COMBINED,
    ClassMetrics,
    EvaluationError,
    EvaluationResult,
    evaluate,
)

__all__ = [
    "BENCHMARKS",
    "COMBINED",
    "ClassMetrics",
    "EvaluationError",
    "EvaluationResult",
    "evaluate",
]
