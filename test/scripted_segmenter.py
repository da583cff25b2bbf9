"""A Segmenter test double: scripted per-frame outputs, every call recorded.

``script`` maps a frame index (0-based count of ``start_frame`` calls, never reset) to
``{object_id: (mask, mask_score, logit)}``. On a frame, ``propagate`` gives each held
object its scripted output, or repeats its previous output when the frame does not
script it. ``prompt`` gives each prompted object, by default, its filled box as the mask
with score 0.9 and logit 10; ``prompt_script`` ({frame: {object_id: output}}) overrides
that. Tensors live on the CPU.

``calls`` records ``(name, payload)`` for start_frame (frame index), propagate (ids),
prompt (ids, boxes, masks), finish_frame (neutralised ids), remove (ids) and reset.
The double also checks the call order that segmenter.py documents.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from seg2track_ros.engine.segmenter import Segmenter, SegmentOutput

Output = tuple[np.ndarray, float, float]  # (mask (H, W) bool, mask score, logit)

PROMPT_SCORE = 0.9
PROMPT_LOGIT = 10.0


def box_mask(height: int, width: int, box: Sequence[float]) -> np.ndarray:
    """The filled box (pixel edges, rounded) as an (H, W) bool mask."""
    x0, y0, x1, y1 = (int(np.floor(v + 0.5)) for v in box)
    mask = np.zeros((height, width), dtype=bool)
    mask[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] = True
    return mask


class ScriptedSegmenter(Segmenter):
    def __init__(
        self,
        script: Mapping[int, Mapping[int, Output]] | None = None,
        prompt_script: Mapping[int, Mapping[int, Output]] | None = None,
    ) -> None:
        self.device = torch.device("cpu")
        self.script = {k: dict(v) for k, v in (script or {}).items()}
        self.prompt_script = {k: dict(v) for k, v in (prompt_script or {}).items()}
        self.calls: list[tuple[str, Any]] = []
        self.frame_index = -1
        self._current: dict[int, Output] = {}  # held objects' latest outputs
        self._shape: tuple[int, int] | None = None
        self._open = False

    # --- helpers for tests ---------------------------------------------------------
    def named(self, name: str) -> list[Any]:
        """Payloads of the recorded calls called ``name``."""
        return [payload for call, payload in self.calls if call == name]

    def frame_calls(self, frame: int) -> list[tuple[str, Any]]:
        """Calls made while frame ``frame`` was current (start_frame included)."""
        out, current = [], -1
        for call, payload in self.calls:
            if call == "start_frame":
                current = payload
            if current == frame:
                out.append((call, payload))
        return out

    @property
    def held(self) -> list[int]:
        return list(self._current)

    # --- Segmenter -----------------------------------------------------------------
    def start_frame(self, image: np.ndarray) -> None:
        assert not self._open, "start_frame before finish_frame of the previous frame"
        self.frame_index += 1
        self._shape = image.shape[:2]
        self._open = True
        self.calls.append(("start_frame", self.frame_index))

    def propagate(self) -> SegmentOutput:
        assert self._open, "propagate outside a frame"
        scripted = self.script.get(self.frame_index, {})
        for object_id in self._current:
            if object_id in scripted:
                self._current[object_id] = scripted[object_id]
        ids = list(self._current)
        self.calls.append(("propagate", ids))
        return self._output(ids)

    def prompt(
        self,
        object_ids: Sequence[int],
        boxes: np.ndarray,
        masks: np.ndarray | None = None,
    ) -> SegmentOutput:
        assert self._open, "prompt outside a frame"
        assert self._shape is not None
        ids = [int(i) for i in object_ids]
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        assert len(ids) == len(boxes) == len(set(ids))
        self.calls.append(("prompt", (ids, boxes.copy(), None if masks is None else masks.copy())))
        scripted = self.prompt_script.get(self.frame_index, {})
        for object_id, box in zip(ids, boxes, strict=True):
            default = (box_mask(*self._shape, box), PROMPT_SCORE, PROMPT_LOGIT)
            self._current[object_id] = scripted.get(object_id, default)
        return self._output(ids)

    def finish_frame(self, neutralise: Sequence[int] = ()) -> None:
        assert self._open, "finish_frame outside a frame"
        assert set(neutralise) <= set(self._current), "neutralised an unknown object"
        self._open = False
        self.calls.append(("finish_frame", sorted(int(i) for i in neutralise)))

    def remove(self, object_ids: Sequence[int]) -> None:
        assert not self._open, "remove is called after finish_frame"
        ids = [int(i) for i in object_ids]
        assert set(ids) <= set(self._current), "removed an unknown object"
        for object_id in ids:
            del self._current[object_id]
        self.calls.append(("remove", ids))

    def reset(self) -> None:
        self._current.clear()
        self._open = False
        self.calls.append(("reset", None))

    # -----------------------------------------------------------------------------------
    def _output(self, ids: list[int]) -> SegmentOutput:
        assert self._shape is not None
        height, width = self._shape
        if not ids:
            return SegmentOutput.empty(height, width)
        masks = np.stack([np.asarray(self._current[i][0], dtype=bool) for i in ids])
        assert masks.shape[1:] == (height, width), "scripted mask of the wrong size"
        return SegmentOutput(
            object_ids=list(ids),
            masks=torch.from_numpy(masks),
            mask_scores=torch.tensor([self._current[i][1] for i in ids], dtype=torch.float32),
            object_score_logits=torch.tensor(
                [self._current[i][2] for i in ids], dtype=torch.float32
            ),
        )
