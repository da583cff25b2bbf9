"""The test data ships with the repository: a plain clone has everything the tests read."""

from __future__ import annotations

import subprocess

from conftest import REPO_ROOT


def test_kitti_mots_ground_truth_is_tracked_inside_the_repository(kitti_mots_gt):
    root = kitti_mots_gt.parent
    assert kitti_mots_gt.resolve().is_relative_to(REPO_ROOT)
    assert (root / "LICENSE").is_file() and (root / "README.md").is_file()
    assert "CC BY-NC-SA 3.0" in (root / "README.md").read_text()
    files = subprocess.run(
        ["git", "ls-files", str(root.relative_to(REPO_ROOT))],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    rel = root.relative_to(REPO_ROOT).as_posix()
    for name in (
        "LICENSE",
        "README.md",
        *(f"instances_txt/{s}.txt" for s in ("0002", "0006", "0012")),
    ):
        assert f"{rel}/{name}" in files, f"{rel}/{name} is not committed"
