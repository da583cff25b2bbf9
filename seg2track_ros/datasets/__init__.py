"""Dataset readers and writers: KITTI MOTS, MOTS20, TrackR-CNN, KITTI boxes, MOT det.txt.

ROS-free (nothing here imports rclpy). Every reader checks every line and raises
``FormatError`` (message ``FILE:LINE: problem``) at the first bad one; none skips a line.
Frames are 0-based in everything these modules return or take (the engine's frame
index); 1-based formats (MOTS20, MOT) are shifted at the file boundary. Masks stay
compressed RLE until decoded, one object or one frame at a time.

- ``read_kitti_mots`` / ``write_kitti_mots`` / ``kitti_mots_writer``: ground truth and
  results, ``{frame: [MaskObject]}``.
- ``read_mots20`` / ``write_mots20`` / ``mots20_writer`` / ``read_seqinfo``.
- ``read_trackrcnn`` / ``write_trackrcnn``: ``{frame: [MaskDetection]}``.
- ``read_kitti_boxes`` (format ``boxes``), ``read_kitti_tracking``, ``read_mot_det``:
  ``{frame: [BoxDetection]}``.
- ``read_detections(path, fmt)``: engine ``Detections`` per frame from any detection
  format, as a ``DetectionSequence`` that decodes one frame at a time.
- ``simulate`` (imported on its own; it needs OpenCV): noisy TrackR-CNN detections from
  ground truth.
"""

from __future__ import annotations

from seg2track_ros.datasets.detections import (
    DEPRECATED_FORMAT_NAMES,
    DETECTION_FORMATS,
    FORMAT_EXAMPLES,
    DetectionFormat,
    DetectionSequence,
    canonical_format,
    read_detections,
)
from seg2track_ros.datasets.errors import DatasetError, DatasetFileError, FormatError, WriteError
from seg2track_ros.datasets.kitti_boxes import read_kitti_boxes
from seg2track_ros.datasets.kitti_mots import kitti_mots_writer, read_kitti_mots, write_kitti_mots
from seg2track_ros.datasets.kitti_tracking import read_kitti_tracking
from seg2track_ros.datasets.mot_det import read_mot_det
from seg2track_ros.datasets.mots20 import (
    SeqInfo,
    mots20_writer,
    read_mots20,
    read_seqinfo,
    write_mots20,
)
from seg2track_ros.datasets.mots_format import (
    KITTI_MOTS,
    MOTS20,
    MotsDialect,
    MotsWriter,
    TrackLike,
    WriteSummary,
)
from seg2track_ros.datasets.records import (
    BoxDetection,
    MaskDetection,
    MaskObject,
    class_name,
    decode_masks,
    encode_mask,
    masks_by_id,
)
from seg2track_ros.datasets.trackrcnn import read_trackrcnn, write_trackrcnn

__all__ = [
    "DEPRECATED_FORMAT_NAMES",
    "DETECTION_FORMATS",
    "FORMAT_EXAMPLES",
    "KITTI_MOTS",
    "MOTS20",
    "BoxDetection",
    "DatasetError",
    "DatasetFileError",
    "DetectionFormat",
    "DetectionSequence",
    "FormatError",
    "MaskDetection",
    "MaskObject",
    "MotsDialect",
    "MotsWriter",
    "SeqInfo",
    "TrackLike",
    "WriteError",
    "WriteSummary",
    "canonical_format",
    "class_name",
    "decode_masks",
    "encode_mask",
    "kitti_mots_writer",
    "masks_by_id",
    "mots20_writer",
    "read_detections",
    "read_kitti_boxes",
    "read_kitti_mots",
    "read_kitti_tracking",
    "read_mot_det",
    "read_mots20",
    "read_seqinfo",
    "read_trackrcnn",
    "write_kitti_mots",
    "write_mots20",
    "write_trackrcnn",
]
