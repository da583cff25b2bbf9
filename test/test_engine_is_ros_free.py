"""The engine is importable and usable without ROS: nothing under seg2track_ros.engine
imports rclpy or any ROS message package."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO_ROOT

ENGINE_MODULES = [
    p.stem for p in (REPO_ROOT / "seg2track_ros" / "engine").glob("*.py") if p.stem != "__init__"
]


def test_engine_modules_import_without_ros():
    assert "tracker" in ENGINE_MODULES and "sam2_stream" in ENGINE_MODULES
    imports = "; ".join(f"import seg2track_ros.engine.{m}" for m in ENGINE_MODULES)
    # Block the ROS packages outright: an import of any of them fails the test.
    code = (
        "import sys\n"
        "for name in ('rclpy', 'seg2track_msgs', 'vision_msgs', 'sensor_msgs', 'std_msgs'):\n"
        "    sys.modules[name] = None\n"
        f"{imports}\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
