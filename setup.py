"""ament_python build of seg2track_ros: the Python package, launch and config files."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "seg2track_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", sorted(glob("launch/*.launch.py"))),
        (
            f"share/{PACKAGE}/config",
            sorted(glob("config/*.yaml") + glob("config/*.rviz") + glob("config/*.xml")),
        ),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="seg2track_ros maintainers",
    maintainer_email="maintainers@seg2track.dev",
    description="SAM 2 based multi-object tracking and segmentation for ROS 2.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "seg2track = seg2track_ros.cli:main",
            "tracker_node = seg2track_ros.ros.entry_points:tracker_node",
            "results_writer = seg2track_ros.ros.entry_points:results_writer",
        ],
        # Segmenters selected by name (tracker_node's `segmenter`, `seg2track run
        # --segmenter`); other packages add theirs to the same group. See
        # seg2track_ros/engine/registry.py.
        "seg2track_ros.segmenters": [
            "sam2 = seg2track_ros.engine.sam2_model:build_segmenter",
            "detection-masks = seg2track_ros.engine.detection_masks:build_segmenter",
        ],
    },
)
