"""SAM 2 as an online, batched, memory-bounded segmenter.

sam2's own video predictor needs the whole video up front, keeps every frame's image
features and outputs, and runs objects one after another. This module drives the same
model (SAM2Base and its modules) frame by frame:

- each frame is encoded once; all objects share the features;
- all objects are propagated together: one mask-decoder call and one memory-encoder
  call per frame over the batch of objects, and one memory-attention call per memory
  layout (objects whose banks hold as many memory frames and pointers, e.g. all objects
  older than the memory window): nothing is padded, so attention needs no mask and no
  object attends to a padded frame (the mask decoder runs once more on frames with box
  prompts, because prompted and unprompted objects use different tokens);
- per object only what attention can use is kept: the `num_maskmem - 1` most recent
  frames' memories, at most `max_conditioning_frames` prompted frames (the first prompt
  stays, the oldest re-prompt is dropped first) and the object pointers of the last
  `max_object_pointers - 1` frames. Nothing grows with the length of the stream.

Semantics follow sam2's video predictor (SAM2VideoPredictor, sam2 1.1.0): memories are
stored in bfloat16, prompted frames are conditioning frames whose memory encodes the
binarised mask, tracked frames encode the sigmoid of the mask logits, and object
pointers carry a temporal position relative to the current frame. Tests check our
mask logits and object scores against the predictor's on the same clip (26 frames,
objects first prompted on three frames, re-prompts, the memory pathway's weights
amplified so that memory dominates), and that memory bugs injected into this module
make that comparison fail. One deliberate difference: a
re-prompted frame becomes a conditioning frame (the predictor's
`add_all_frames_to_correct_as_cond=True` behaviour), so a re-prompt re-anchors the track.
"""

from __future__ import annotations

import copy
import math
from collections import OrderedDict, deque
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from seg2track_ros.engine.segmenter import Segmenter, SegmentOutput
from seg2track_ros.engine.types import InvalidInputError

# sam2's normalisation of RGB images in [0, 1].
_IMAGE_MEAN = (0.485, 0.456, 0.406)
_IMAGE_STD = (0.229, 0.224, 0.225)
# Logit magnitude that the sigmoid maps to exactly 0 or 1 in float32: turns the
# binarisation of prompted frames into the same sigmoid path as tracked frames.
_HARD_LOGIT = 1.0e4
# sam2's placeholder logit for "object not present".
_NO_OBJECT_LOGIT = -1024.0


@dataclass
class _MemoryEntry:
    """One frame of one object's memory."""

    frame_index: int
    features: torch.Tensor | None  # (mem_dim, h, w) bfloat16; None once outside the window
    pointer: torch.Tensor  # (hidden_dim,)


@dataclass
class _ObjectMemory:
    conditioning: OrderedDict[int, _MemoryEntry] = field(default_factory=OrderedDict)
    recent: deque[_MemoryEntry] = field(default_factory=deque)

    def tensors(self) -> list[torch.Tensor]:
        entries = [*self.conditioning.values(), *self.recent]
        return [t for e in entries for t in (e.features, e.pointer) if t is not None]


@dataclass
class _FrameOutputs:
    """Outputs of the current frame for a set of objects (batched tensors)."""

    object_ids: list[int]
    low_res_logits: torch.Tensor  # (K, 1, s, s) float32, s = image_size / 4
    pointers: torch.Tensor  # (K, hidden_dim)
    object_score_logits: torch.Tensor  # (K, 1)
    mask_scores: torch.Tensor  # (K,)
    prompted: bool


class Sam2StreamSegmenter(Segmenter):
    """Online SAM 2 segmenter over a SAM2Base model (see the module docstring)."""

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        max_conditioning_frames: int = 4,
        max_object_pointers: int = 16,
        bf16: bool = True,
        bucket_batches: bool = False,
        compile_backend: str | None = None,
        objects_per_call: int | None = None,
    ) -> None:
        self.model = model
        self.device = model.device
        self.image_size = int(model.image_size)
        self.num_maskmem = int(model.num_maskmem)
        self.max_conditioning_frames = int(max_conditioning_frames)
        self.max_object_pointers = int(max_object_pointers)
        if self.max_object_pointers < 2 or self.max_conditioning_frames < 1:
            # Pointer positions are scaled by max_object_pointers - 1.
            raise ValueError("max_object_pointers must be >= 2 and max_conditioning_frames >= 1")
        if self.num_maskmem < 1:
            raise ValueError("SAM 2 models without memory (num_maskmem 0) are not supported")
        # How many past frames an object keeps: memories for num_maskmem - 1, pointers
        # for max_object_pointers - 1.
        self._recent_frames = max(self.num_maskmem - 1, self.max_object_pointers - 1)
        use_bf16 = bf16 and self.device.type == "cuda"
        self._autocast = (
            (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if use_bf16 else nullcontext
        )
        mean = torch.tensor(_IMAGE_MEAN, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(_IMAGE_STD, device=self.device).view(1, 3, 1, 1)
        self._mean, self._std = mean, std
        self._init_stream_state()
        # Static shapes for the compiled heads: object batches padded to a bucket size,
        # so a compiled step never sees a new shape while objects come and go (one
        # compilation per bucket).
        self.bucket_batches = bool(bucket_batches or compile_backend)
        # At most this many objects per memory-attention, mask-decoder and memory-encoder
        # call (None: all at once). On a CPU, smaller batches keep each call's keys and
        # values in cache; on a GPU, one call over every object is fastest.
        if objects_per_call is not None and objects_per_call < 1:
            raise ValueError(f"objects_per_call must be >= 1 or None, got {objects_per_call}")
        self.objects_per_call = objects_per_call
        self._attend, self._heads, self._encode_memory = (
            _batched_memory_attention,
            model._forward_sam_heads,
            model._encode_new_memory,
        )
        if compile_backend is not None:
            # The mask decoder and the memory encoder, each over a padded object batch
            # (dynamic=False: shapes are static per bucket). Each bucket and prompt kind
            # (none, box, box + previous mask) is one graph: allow that many per
            # function instead of dynamo's default of 8. Memory attention stays eager:
            # compiled over memory padded to its static maximum it took 97 ms per frame
            # against 48 ms eager (H100, small, 20 objects; BENCHMARKS.md profiles), as
            # padded keys need a masked attention kernel over more keys and inductor
            # cannot generate RoPE's complex multiply.
            import torch._dynamo.config as dynamo_config

            graphs = 3 * (len(BATCH_BUCKETS) + 2)
            dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, graphs)
            self._heads, self._encode_memory = (
                torch.compile(fn, backend=compile_backend, dynamic=False)
                for fn in (self._heads, self._encode_memory)
            )
        # Named ranges for torch.profiler (seg2track_ros.bench.profile): what each of
        # the three costs inside a phase. Nearly free when no profiler runs.
        self._attend, self._heads, self._encode_memory = (
            _profiler_range(name, fn)
            for name, fn in (
                ("seg2track::memory_attention", self._attend),
                ("seg2track::sam_heads", self._heads),
                ("seg2track::memory_encoder", self._encode_memory),
            )
        )

    def _init_stream_state(self) -> None:
        """The per-stream state: objects, their memory and the current frame."""
        self._objects: dict[int, _ObjectMemory] = {}
        self._maskmem_pos_enc: torch.Tensor | None = None  # (1, mem_dim, h, w), shared
        self._frame_index = -1
        self._frame_size: tuple[int, int] | None = None
        self._features: _FrameFeatures | None = None
        self._outputs: dict[int, tuple[_FrameOutputs, int]] = {}
        # This frame's memory-conditioned features per object, (C, h, w): a re-prompt
        # after propagate() reuses them instead of running memory attention again.
        self._conditioned: dict[int, torch.Tensor] = {}

    def new_stream(self) -> Sam2StreamSegmenter:
        """A segmenter for another stream over the same model (and the same compiled
        heads): no objects, its own memory banks and frame index. The model's weights
        are held once however many streams use them."""
        stream = copy.copy(self)
        stream._init_stream_state()
        return stream

    def shares_model_with(self, other: Segmenter) -> bool:
        """True when ``other`` is a stream over the same model and settings, so the two
        can be run in one batched call (``start_frames``, ``propagate_streams``,
        ``finish_frames``)."""
        return (
            type(other) is type(self)
            and other.model is self.model
            and other._heads is self._heads
            and other.objects_per_call == self.objects_per_call
            and other.bucket_batches == self.bucket_batches
            and other.max_object_pointers == self.max_object_pointers
            and other._autocast is self._autocast
        )

    # ------------------------------------------------------------------ Segmenter API
    @torch.inference_mode()
    def start_frame(self, image: np.ndarray) -> None:
        pixels = self._preprocess(image)
        (features,) = self._encode_images(pixels)
        self._begin_frame(image.shape[:2], features)

    def _preprocess(self, image: np.ndarray) -> torch.Tensor:
        """The image checked, resized and normalised: (1, 3, S, S) on the device."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InvalidInputError(
                f"expected an (H, W, 3) uint8 RGB image, got {image.dtype} {image.shape}"
            )
        height, width = image.shape[:2]
        if height == 0 or width == 0:
            raise InvalidInputError(f"empty image {image.shape}")
        pixels = torch.from_numpy(np.ascontiguousarray(image)).to(self.device, non_blocking=True)
        pixels = pixels.permute(2, 0, 1).unsqueeze(0).float() / 255.0
        if (height, width) != (self.image_size, self.image_size):
            pixels = F.interpolate(
                pixels,
                size=(self.image_size, self.image_size),
                mode="bilinear",
                align_corners=False,
                antialias=True,
            )
        return (pixels - self._mean) / self._std

    def _encode_images(self, pixels: torch.Tensor) -> list[_FrameFeatures]:
        """One image-encoder call over (B, 3, S, S) images; each image's features."""
        with self._autocast():
            backbone = self.model.forward_image(pixels)
            _, feats, pos, sizes = self.model._prepare_backbone_features(backbone)
        if len(pixels) == 1:
            return [_FrameFeatures(feats, pos, sizes)]
        # Per image (h*w, 1, C), contiguous like a single image's.
        return [
            _FrameFeatures(
                [f[:, b : b + 1].contiguous() for f in feats],
                [p[:, b : b + 1].contiguous() for p in pos],
                sizes,
            )
            for b in range(len(pixels))
        ]

    def _begin_frame(self, size: tuple[int, int], features: _FrameFeatures) -> None:
        self._frame_index += 1
        self._frame_size = (int(size[0]), int(size[1]))
        self._outputs = {}
        self._conditioned = {}
        self._features = features

    @torch.inference_mode()
    def propagate(self) -> SegmentOutput:
        features = self._require_frame()
        ids = [i for i, memory in self._objects.items() if memory.conditioning]
        if not ids:
            return self._empty_output()
        parts = []
        with self._autocast():
            conditioned = self._conditioned_features(features, ids)
            start = 0
            for chunk in self._chunks(ids):
                pix_feat = conditioned[start : start + len(chunk)]
                start += len(chunk)
                parts.append(self._decode(features, chunk, pix_feat, None, None, is_initial=False))
        outputs = _concat_outputs(parts) if len(parts) > 1 else parts[0]
        self._record(outputs)
        return self._to_segment_output(outputs)

    @torch.inference_mode()
    def prompt(
        self, object_ids: Sequence[int], boxes: np.ndarray, masks: np.ndarray | None = None
    ) -> SegmentOutput:
        features = self._require_frame()
        ids = [int(i) for i in object_ids]
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        if len(ids) != len(boxes):
            raise InvalidInputError(f"{len(ids)} object ids for {len(boxes)} boxes")
        if len(set(ids)) != len(ids):
            raise InvalidInputError("an object id appears twice in one prompt")
        if not ids:
            return self._empty_output()
        new = [k for k, i in enumerate(ids) if not self._has_memory(i)]
        known = [k for k, i in enumerate(ids) if self._has_memory(i)]
        parts: list[_FrameOutputs] = []
        with self._autocast():
            for chunk in self._chunks(new):
                new_ids = [ids[k] for k in chunk]
                pix_feat = self._initial_features(features, len(new_ids))
                parts.append(
                    self._decode(features, new_ids, pix_feat, boxes[chunk], None, is_initial=True)
                )
            # As in sam2's predictor, prompting a frame that already has an output for
            # the object also feeds that output's logits as the mask prompt; objects
            # without one (not propagated this frame) are decoded apart, without.
            with_output = [k for k in known if ids[k] in self._outputs]
            without_output = [k for k in known if ids[k] not in self._outputs]
            for group in (with_output, without_output):
                for chunk in self._chunks(group):
                    known_ids = [ids[k] for k in chunk]
                    pix_feat = self._conditioned_features(features, known_ids)
                    previous = self._previous_logits(known_ids) if group is with_output else None
                    parts.append(
                        self._decode(
                            features, known_ids, pix_feat, boxes[chunk], previous, is_initial=False
                        )
                    )
        for part in parts:
            for object_id in part.object_ids:
                self._objects.setdefault(object_id, _ObjectMemory())
            self._record(part)
        merged = _concat_outputs(parts) if len(parts) > 1 else parts[0]
        order = [merged.object_ids.index(i) for i in ids]
        return self._to_segment_output(_select(merged, order))

    @torch.inference_mode()
    def finish_frame(self, neutralise: Sequence[int] = ()) -> None:
        features = self._require_frame()
        self._conditioned = {}
        inputs = self._memory_inputs(neutralise)
        if inputs is None:
            return
        ids, prompted, high_res, scores, pointers = inputs
        memory_features, pos_enc = self._encode_memories(
            features.vision_feats[-1], features.feat_sizes[-1:], high_res, scores
        )
        self._commit_memories(ids, prompted, memory_features, pointers, pos_enc)

    def _memory_inputs(
        self, neutralise: Sequence[int]
    ) -> tuple[list[int], list[bool], torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """What the memory encoder needs for this frame's objects (None when no object
        has an output): ids, prompted flags, high-resolution mask logits (K, 1, S, S),
        object scores (K, 1) and pointers (K, hidden_dim)."""
        if not self._outputs:
            return None
        ids = list(self._outputs)
        rows = [self._outputs[object_id] for object_id in ids]
        logits = torch.cat([b.low_res_logits[r : r + 1] for b, r in rows])
        scores = torch.cat([b.object_score_logits[r : r + 1] for b, r in rows])
        pointers = torch.cat([b.pointers[r : r + 1] for b, r in rows])
        prompted_flags = [b.prompted for b, _ in rows]
        prompted = torch.tensor(prompted_flags, device=self.device)
        high_res = F.interpolate(
            logits, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False
        )
        # Prompted frames store the binarised mask (sam2's binarize_mask_from_pts_for_mem_enc);
        # hard logits make the memory encoder's sigmoid exactly 0 or 1.
        hard = torch.where(high_res > 0, _HARD_LOGIT, -_HARD_LOGIT)
        high_res = torch.where(prompted.view(-1, 1, 1, 1), hard, high_res)
        if neutralise:
            # SAM2MOT: an occluded object's memory for this frame says "not visible", so
            # it does not learn the occluder: empty mask, negative object score, and the
            # model's no-object pointer.
            hidden = torch.tensor([i in set(neutralise) for i in ids], device=self.device)
            high_res = torch.where(hidden.view(-1, 1, 1, 1), -_HARD_LOGIT, high_res)
            scores = torch.where(hidden.view(-1, 1), torch.full_like(scores, -10.0), scores)
            if getattr(self.model, "no_obj_ptr", None) is not None:
                no_pointer = self.model.no_obj_ptr.to(pointers.dtype).expand_as(pointers)
                pointers = torch.where(hidden.view(-1, 1), no_pointer, pointers)
        return ids, prompted_flags, high_res, scores, pointers

    def _encode_memories(
        self,
        vision: torch.Tensor,
        feat_sizes: list[tuple[int, int]],
        high_res: torch.Tensor,
        scores: torch.Tensor,
        rows: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The memory encoder over K objects, in calls of at most objects_per_call.

        ``vision`` is the last level's image features (h*w, B, C): one image shared by
        every object (B = 1, ``rows`` None), or B images and ``rows`` (K,) the image of
        each object (several streams). Returns (K, mem_dim, h, w) bfloat16 memory
        features and the memory position encoding (1, mem_dim, h, w).
        """
        encoded = []
        pos = None
        for chunk in self._chunks(range(len(high_res))):
            start, stop = chunk[0], chunk[-1] + 1
            size = self._batch_size(stop - start)
            if rows is None:
                chunk_vision = vision.expand(-1, size, -1)
            else:
                chunk_vision = vision[:, _pad_rows(rows[start:stop], size)]
            with self._autocast():
                memory_features, pos_enc = self._encode_memory(
                    current_vision_feats=[chunk_vision],
                    feat_sizes=feat_sizes,
                    pred_masks_high_res=_pad_rows(high_res[start:stop], size),
                    object_score_logits=_pad_rows(scores[start:stop], size),
                    is_mask_from_pts=False,
                )
            encoded.append(memory_features[: stop - start].to(torch.bfloat16))
            if pos is None:
                pos = pos_enc[-1][:1]
        memory_features = torch.cat(encoded) if len(encoded) > 1 else encoded[0]
        return memory_features, pos

    def _commit_memories(
        self,
        ids: list[int],
        prompted: list[bool],
        memory_features: torch.Tensor,
        pointers: torch.Tensor,
        pos_enc: torch.Tensor,
    ) -> None:
        if self._maskmem_pos_enc is None:
            self._maskmem_pos_enc = pos_enc.clone()
        for k, object_id in enumerate(ids):
            entry = _MemoryEntry(self._frame_index, memory_features[k].clone(), pointers[k].clone())
            self._store(object_id, entry, prompted=prompted[k])
        self._outputs = {}
        self._conditioned = {}

    def remove(self, object_ids: Sequence[int]) -> None:
        for object_id in object_ids:
            self._objects.pop(int(object_id), None)
            self._outputs.pop(int(object_id), None)
            self._conditioned.pop(int(object_id), None)

    def reset(self) -> None:
        self._objects.clear()
        self._outputs = {}
        self._conditioned = {}

    def memory_bytes(self) -> int:
        tensors = [t for memory in self._objects.values() for t in memory.tensors()]
        if self._maskmem_pos_enc is not None:
            tensors.append(self._maskmem_pos_enc)
        return sum(t.numel() * t.element_size() for t in tensors)

    # ------------------------------------------------------------------ introspection
    @property
    def object_ids(self) -> list[int]:
        return list(self._objects)

    def memory_layout(self, object_id: int) -> dict[str, int]:
        """How many conditioning frames, memory frames and pointers an object holds."""
        memory = self._objects[object_id]
        return {
            "conditioning_frames": len(memory.conditioning),
            "recent_frames": len(memory.recent),
            "memory_features": sum(e.features is not None for e in memory.recent),
            "pointers": len(memory.conditioning) + len(memory.recent),
        }

    def current_logits(self, object_ids: Sequence[int]) -> torch.Tensor:
        """This frame's low-resolution mask logits (K, s, s) of the given objects, for
        inspection and tests; only between propagate/prompt and finish_frame."""
        rows = [self._outputs[int(i)] for i in object_ids]
        return torch.cat([batch.low_res_logits[row : row + 1, 0] for batch, row in rows])

    # ------------------------------------------------------------------ internals
    def _require_frame(self) -> _FrameFeatures:
        if self._features is None:
            raise RuntimeError("start_frame() must be called before this")
        return self._features

    def _chunks(self, items: Sequence) -> list[list]:
        """``items`` in runs of at most ``objects_per_call`` (one run when None)."""
        items = list(items)
        step = self.objects_per_call or max(len(items), 1)
        return [items[start : start + step] for start in range(0, len(items), step)]

    def _batch_size(self, count: int) -> int:
        return bucket_size(count) if self.bucket_batches else count

    def _has_memory(self, object_id: int) -> bool:
        memory = self._objects.get(object_id)
        return memory is not None and bool(memory.conditioning)

    def _empty_output(self) -> SegmentOutput:
        height, width = self._frame_size or (0, 0)
        return SegmentOutput.empty(height, width, self.device)

    def _initial_features(self, features: _FrameFeatures, batch: int) -> torch.Tensor:
        """Memory-free features for objects prompted for the first time."""
        vision = [f.expand(-1, batch, -1) for f in features.vision_feats[-1:]]
        pos = [p.expand(-1, batch, -1) for p in features.vision_pos[-1:]]
        return self.model._prepare_memory_conditioned_features(
            frame_idx=self._frame_index,
            is_init_cond_frame=True,
            current_vision_feats=vision,
            current_vision_pos_embeds=pos,
            feat_sizes=features.feat_sizes[-1:],
            output_dict=None,
            num_frames=None,
        )

    def _memory_conditioned_features(
        self,
        features: _FrameFeatures,
        object_ids: list[int],
        inputs: list[tuple[list, list]] | None = None,
        rows: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Batched memory attention for objects with memory; returns (K, C, h, w).

        ``inputs``: each object's ``_attention_inputs``, when the caller already has them.
        ``rows`` (K,): the image of each object when ``features`` hold several streams'
        images (``propagate_streams``); None: one image shared by all.
        Never padded to a bucket: attention runs eagerly (see __init__)."""
        model = self.model
        batch = len(object_ids)
        hidden_dim, mem_dim = model.hidden_dim, model.mem_dim
        height, width = features.feat_sizes[-1]
        tokens_per_frame = height * width
        tokens_per_pointer = hidden_dim // mem_dim if mem_dim < hidden_dim else 1
        if inputs is None:
            inputs = [self._attention_inputs(self._objects[i]) for i in object_ids]
        frames_per_object = [frames for frames, _ in inputs]
        pointers_per_object = [pointers for _, pointers in inputs]
        max_frames = max(len(f) for f in frames_per_object)
        max_pointers = max(len(p) for p in pointers_per_object)
        device = self.device
        pos_enc = self._maskmem_pos_enc.flatten(2).permute(2, 0, 1)  # (hw, 1, mem_dim)

        # Memory frames: (F*hw, K, mem_dim) features and position encodings, zero-padded.
        frame_feats, frame_tpos, _ = _pad_batch(frames_per_object, max_frames, device)
        memory = frame_feats.flatten(3).permute(0, 3, 1, 2).reshape(-1, batch, mem_dim)
        tpos = model.maskmem_tpos_enc[frame_tpos.long()]  # (F, K, 1, 1, mem_dim)
        memory_pos = pos_enc.unsqueeze(0) + tpos.view(max_frames, 1, batch, mem_dim)
        memory_pos = memory_pos.reshape(max_frames * tokens_per_frame, batch, mem_dim)
        memory = memory.to(memory_pos.dtype)

        # Object pointers: (P*tokens_per_pointer, K, mem_dim) with temporal positions.
        pointer_tokens = 0
        if model.use_obj_ptrs_in_encoder and max_pointers > 0:
            pointers, distances, _ = _pad_batch(pointers_per_object, max_pointers, device)
            pointers = pointers.float()
            if model.add_tpos_enc_to_obj_ptrs:
                from sam2.modeling.sam2_utils import get_1d_sine_pe

                t_diff_max = self.max_object_pointers - 1
                tpos_dim = hidden_dim if model.proj_tpos_enc_in_obj_ptrs else mem_dim
                pointer_pos = get_1d_sine_pe(distances / t_diff_max, dim=tpos_dim)
                pointer_pos = model.obj_ptr_tpos_proj(pointer_pos)  # (P, K, mem_dim)
            else:
                pointer_pos = pointers.new_zeros(max_pointers, batch, mem_dim)
            if mem_dim < hidden_dim:
                pointers = pointers.reshape(max_pointers, batch, tokens_per_pointer, mem_dim)
                pointers = pointers.permute(0, 2, 1, 3).flatten(0, 1)
                pointer_pos = pointer_pos.repeat_interleave(tokens_per_pointer, dim=0)
            pointer_tokens = pointers.shape[0]
            memory = torch.cat([memory, pointers.to(memory.dtype)], dim=0)
            memory_pos = torch.cat([memory_pos, pointer_pos.to(memory_pos.dtype)], dim=0)

        # _conditioned_features groups objects by memory layout, so nothing is padded and
        # attention runs without a mask (decided on the host, no device sync).
        layouts = {
            (len(f), len(p)) for f, p in zip(frames_per_object, pointers_per_object, strict=True)
        }
        if len(layouts) > 1:
            raise RuntimeError(f"memory attention over mixed memory layouts {sorted(layouts)}")
        attended = self._attend(
            model.memory_attention,
            curr=features.vision_feats[-1],
            curr_pos=features.vision_pos[-1],
            memory=memory,
            memory_pos=memory_pos,
            num_obj_ptr_tokens=pointer_tokens,
            batch=batch,
            rows=rows,
        )
        attended = attended.permute(1, 2, 0).reshape(batch, hidden_dim, height, width)
        return attended

    def _attention_inputs(
        self, memory: _ObjectMemory
    ) -> tuple[list[tuple[int, torch.Tensor]], list[tuple[int, torch.Tensor]]]:
        """(temporal-position index, features) per memory frame and (distance, pointer)
        per object pointer, in sam2's order: conditioning frames, then oldest to newest."""
        now = self._frame_index
        cond_index = self.num_maskmem - 1  # sam2's t_pos 0
        frames = [(cond_index, e.features) for e in memory.conditioning.values()]
        pointers = [(abs(now - e.frame_index), e.pointer) for e in memory.conditioning.values()]
        for entry in memory.recent:
            distance = now - entry.frame_index
            if entry.features is not None and 1 <= distance < self.num_maskmem:
                frames.append((distance - 1, entry.features))
        for entry in reversed(memory.recent):
            distance = now - entry.frame_index
            if 1 <= distance < self.max_object_pointers:
                pointers.append((distance, entry.pointer))
        return frames, pointers

    def _previous_logits(self, object_ids: list[int]) -> torch.Tensor:
        """This frame's logits of objects that all have an output, clamped as sam2 does."""
        rows = []
        for object_id in object_ids:
            batch, row = self._outputs[object_id]
            rows.append(batch.low_res_logits[row : row + 1])
        return torch.clamp(torch.cat(rows), -32.0, 32.0)

    def _conditioned_features(
        self, features: _FrameFeatures, object_ids: list[int]
    ) -> torch.Tensor:
        """(K, C, h, w) memory-conditioned features; computed once per object and frame
        (memory only changes in finish_frame).

        Objects are grouped by memory layout (how many memory frames and pointers they
        attend to) and each group, in calls of at most objects_per_call, attends
        without padding: no attention mask (the fastest kernels, FlashAttention
        included, stay usable) and no object reads a padded frame.
        """
        missing = [i for i in object_ids if i not in self._conditioned]
        inputs = {i: self._attention_inputs(self._objects[i]) for i in missing}
        groups: dict[tuple[int, int], list[int]] = {}
        for object_id, (frames, pointers) in inputs.items():
            groups.setdefault((len(frames), len(pointers)), []).append(object_id)
        computed = None
        for group in groups.values():
            for chunk in self._chunks(group):
                computed = self._memory_conditioned_features(
                    features, chunk, [inputs[i] for i in chunk]
                )
                for row, object_id in enumerate(chunk):
                    self._conditioned[object_id] = computed[row]
        if computed is not None and len(computed) == len(object_ids) and missing == object_ids:
            # One call over exactly these objects, in order: no copy where the attention's
            # output is already contiguous. Contiguous either way, as torch.stack's result
            # is, so the compiled heads see one memory layout and are not recompiled.
            return computed.contiguous()
        return torch.stack([self._conditioned[i] for i in object_ids])

    def _decode(
        self,
        features: _FrameFeatures,
        object_ids: list[int],
        pix_feat: torch.Tensor,
        boxes: np.ndarray | None,
        mask_inputs: torch.Tensor | None,
        *,
        is_initial: bool,
        rows: torch.Tensor | None = None,
    ) -> _FrameOutputs:
        """SAM 2's prompt encoder and mask decoder for a batch of objects (``rows``: as
        in ``_memory_conditioned_features``)."""
        model = self.model
        count = len(object_ids)
        batch = self._batch_size(count)
        pix_feat = _pad_rows(pix_feat, batch)
        if mask_inputs is not None:
            mask_inputs = _pad_rows(mask_inputs, batch)
        high_res = None
        if len(features.vision_feats) > 1 and rows is None:
            high_res = [
                x.permute(1, 2, 0).view(1, x.size(2), *size).expand(batch, -1, -1, -1)
                for x, size in zip(
                    features.vision_feats[:-1], features.feat_sizes[:-1], strict=True
                )
            ]
        elif len(features.vision_feats) > 1:
            index = _pad_rows(rows, batch)
            high_res = [
                x.permute(1, 2, 0).view(x.size(1), x.size(2), *size)[index]
                for x, size in zip(
                    features.vision_feats[:-1], features.feat_sizes[:-1], strict=True
                )
            ]
        point_inputs = None
        if boxes is not None:
            height, width = self._frame_size
            scale = np.array([self.image_size / width, self.image_size / height] * 2, np.float32)
            padded = np.concatenate([boxes, np.repeat(boxes[:1], batch - count, axis=0)])
            coords = torch.from_numpy(padded * scale).to(self.device).view(batch, 2, 2)
            labels = torch.tensor([[2, 3]], dtype=torch.int32, device=self.device).expand(batch, 2)
            point_inputs = {"point_coords": coords, "point_labels": labels}
        multimask = model._use_multimask(is_initial, point_inputs)
        (_, _, ious, low_res, _, pointers, object_scores) = self._heads(
            backbone_features=pix_feat,
            point_inputs=point_inputs,
            mask_inputs=mask_inputs,
            high_res_features=high_res,
            multimask_output=multimask,
        )
        mask_scores = ious.max(dim=-1).values if multimask else ious[:, 0]
        return _FrameOutputs(
            object_ids=list(object_ids),
            low_res_logits=low_res[:count].float(),
            pointers=pointers[:count],
            object_score_logits=object_scores[:count].float(),
            mask_scores=mask_scores[:count].float(),
            prompted=boxes is not None,
        )

    def _record(self, outputs: _FrameOutputs) -> None:
        for row, object_id in enumerate(outputs.object_ids):
            self._outputs[object_id] = (outputs, row)

    def _to_segment_output(self, outputs: _FrameOutputs) -> SegmentOutput:
        height, width = self._frame_size
        logits = F.interpolate(
            outputs.low_res_logits, size=(height, width), mode="bilinear", align_corners=False
        )
        return SegmentOutput(
            object_ids=list(outputs.object_ids),
            masks=logits[:, 0] > 0,
            mask_scores=outputs.mask_scores.clamp(0.0, 1.0),
            object_score_logits=outputs.object_score_logits[:, 0],
        )

    def _store(self, object_id: int, entry: _MemoryEntry, prompted: bool) -> None:
        memory = self._objects.setdefault(object_id, _ObjectMemory())
        if prompted:
            memory.conditioning[entry.frame_index] = entry
            while len(memory.conditioning) > self.max_conditioning_frames:
                # The first prompt anchors the object's identity: drop the oldest
                # re-prompt instead (or the first when only one frame may stay).
                frames = list(memory.conditioning)
                drop = frames[1] if self.max_conditioning_frames >= 2 else frames[0]
                del memory.conditioning[drop]
        else:
            memory.recent.append(entry)
        # Drop what attention can no longer reach.
        oldest_useful = self._frame_index - self._recent_frames + 1
        while memory.recent and memory.recent[0].frame_index < oldest_useful:
            memory.recent.popleft()
        for old in memory.recent:
            if (
                old.features is not None
                and self._frame_index - old.frame_index >= self.num_maskmem - 1
            ):
                old.features = None


# --- several streams over one model: one batched call per phase ------------------------
# Each function takes streams (Sam2StreamSegmenter sharing one model, see
# ``shares_model_with``) and does for all of them what the per-stream method does for
# one, computing everything before it changes any stream: when it raises, no stream has
# changed and the caller may serve the streams one by one instead.


@torch.inference_mode()
def start_frames(streams: Sequence[Sam2StreamSegmenter], images: Sequence[np.ndarray]) -> None:
    """``start_frame`` for every stream: one image-encoder call over all the images
    (each resized to image_size x image_size, so images of different sizes batch)."""
    lead = _lead(streams)
    pixels = torch.cat(
        [stream._preprocess(image) for stream, image in zip(streams, images, strict=True)]
    )
    features = lead._encode_images(pixels)
    for stream, image, feats in zip(streams, images, features, strict=True):
        stream._begin_frame(image.shape[:2], feats)


@torch.inference_mode()
def propagate_streams(streams: Sequence[Sam2StreamSegmenter]) -> list[SegmentOutput]:
    """``propagate`` for every stream: memory attention and the mask decoder over the
    objects of all streams together (in groups of one memory layout and calls of at
    most objects_per_call, as for one stream). Each stream's output lists its objects
    in the order its own ``propagate`` would."""
    lead = _lead(streams)
    features = [stream._require_frame() for stream in streams]
    ids = [[i for i, m in stream._objects.items() if m.conditioning] for stream in streams]
    objects = [(s, i) for s, stream_ids in enumerate(ids) for i in stream_ids]
    if not objects:
        return [stream._empty_output() for stream in streams]
    stacked = _stack_features(features)
    device = lead.device
    # Memory attention per memory layout, across streams.
    inputs = {(s, i): streams[s]._attention_inputs(streams[s]._objects[i]) for s, i in objects}
    groups: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for key, (frames, pointers) in inputs.items():
        groups.setdefault((len(frames), len(pointers)), []).append(key)
    memory_holder = next(streams[s] for s, _ in objects if streams[s]._maskmem_pos_enc is not None)
    conditioned: dict[tuple[int, int], torch.Tensor] = {}
    decoded: list[tuple[list[tuple[int, int]], _FrameOutputs]] = []
    with lead._autocast():
        for group in groups.values():
            for chunk in lead._chunks(group):
                rows = torch.tensor([s for s, _ in chunk], dtype=torch.long, device=device)
                computed = memory_holder._memory_conditioned_features(
                    stacked, chunk, [inputs[k] for k in chunk], rows=rows
                )
                for row, key in enumerate(chunk):
                    conditioned[key] = computed[row]
        for chunk in lead._chunks(objects):
            rows = torch.tensor([s for s, _ in chunk], dtype=torch.long, device=device)
            pix_feat = torch.stack([conditioned[key] for key in chunk])
            placeholder_ids = list(range(len(chunk)))
            decoded.append(
                (
                    chunk,
                    lead._decode(
                        stacked, placeholder_ids, pix_feat, None, None, is_initial=False, rows=rows
                    ),
                )
            )
    merged = _concat_outputs([out for _, out in decoded]) if len(decoded) > 1 else decoded[0][1]
    position = {key: k for k, key in enumerate(key for chunk, _ in decoded for key in chunk)}
    per_stream = []
    for s, stream_ids in enumerate(ids):
        if not stream_ids:
            per_stream.append(None)
            continue
        selected = _select(merged, [position[(s, i)] for i in stream_ids])
        selected.object_ids = list(stream_ids)
        per_stream.append(selected)
    results = []
    for s, (stream, outputs) in enumerate(zip(streams, per_stream, strict=True)):
        if outputs is None:
            results.append(stream._empty_output())
            continue
        for i in ids[s]:
            stream._conditioned[i] = conditioned[(s, i)]
        stream._record(outputs)
        results.append(stream._to_segment_output(outputs))
    return results


@torch.inference_mode()
def finish_frames(
    streams: Sequence[Sam2StreamSegmenter], neutralise: Sequence[Sequence[int]]
) -> None:
    """``finish_frame`` for every stream: one memory-encoder pass over the objects of all
    streams together (in calls of at most objects_per_call)."""
    lead = _lead(streams)
    features = [stream._require_frame() for stream in streams]
    inputs = [
        stream._memory_inputs(hidden) for stream, hidden in zip(streams, neutralise, strict=True)
    ]
    present = [s for s, item in enumerate(inputs) if item is not None]
    if present:
        stacked = _stack_features(features)
        rows = torch.tensor(
            [s for s in present for _ in inputs[s][0]], dtype=torch.long, device=lead.device
        )
        memory_features, pos_enc = lead._encode_memories(
            stacked.vision_feats[-1],
            stacked.feat_sizes[-1:],
            torch.cat([inputs[s][2] for s in present]),
            torch.cat([inputs[s][3] for s in present]),
            rows=rows,
        )
    start = 0
    for s, stream in enumerate(streams):
        item = inputs[s]
        if item is None:
            stream._conditioned = {}
            continue
        ids, prompted, _, _, pointers = item
        stop = start + len(ids)
        stream._commit_memories(ids, prompted, memory_features[start:stop], pointers, pos_enc)
        start = stop


def _lead(streams: Sequence[Sam2StreamSegmenter]) -> Sam2StreamSegmenter:
    if not streams:
        raise ValueError("no streams")
    lead = streams[0]
    for stream in streams[1:]:
        if not lead.shares_model_with(stream):
            raise ValueError("batched streams must share one model and its settings")
    return lead


def _stack_features(features: Sequence[_FrameFeatures]) -> _FrameFeatures:
    """Several images' features as one (h*w, B, C) batch per level."""
    if len(features) == 1:
        return features[0]
    return _FrameFeatures(
        [
            torch.cat(level, dim=1)
            for level in zip(*(f.vision_feats for f in features), strict=True)
        ],
        [torch.cat(level, dim=1) for level in zip(*(f.vision_pos for f in features), strict=True)],
        features[0].feat_sizes,
    )


# Padded object-batch sizes; above the last, multiples of it.
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


def bucket_size(count: int) -> int:
    """The smallest bucket that holds ``count`` objects."""
    for size in BATCH_BUCKETS:
        if count <= size:
            return size
    step = BATCH_BUCKETS[-1]
    return -(-count // step) * step


def _profiler_range(name: str, fn):
    def ranged(*args, **kwargs):
        with torch.profiler.record_function(name):
            return fn(*args, **kwargs)

    return ranged


def _pad_rows(tensor: torch.Tensor, size: int) -> torch.Tensor:
    """``tensor`` with rows (dim 0) appended, copies of its first, up to ``size``."""
    missing = size - tensor.shape[0]
    if missing <= 0:
        return tensor
    return torch.cat([tensor, tensor[:1].expand(missing, *tensor.shape[1:])])


@dataclass
class _FrameFeatures:
    vision_feats: list[torch.Tensor]  # per level (h*w, 1, C)
    vision_pos: list[torch.Tensor]
    feat_sizes: list[tuple[int, int]]


def _pad_batch(
    items_per_object: list[list[tuple[int, torch.Tensor]]], length: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stack per-object lists of (position value, tensor) into a zero-padded batch.

    Returns values (length, K, *tensor shape), positions (length, K) float32 and valid
    (K, length) bool, all on `device`. The index and position arrays are built on the
    host and copied once, so no per-object device work happens here.
    """
    batch = len(items_per_object)
    slots = [(i, b) for b, items in enumerate(items_per_object) for i in range(len(items))]
    sample = items_per_object[slots[0][1]][0][1]
    values = torch.zeros(length, batch, *sample.shape, dtype=sample.dtype, device=device)
    positions = np.zeros((length, batch), np.float32)
    valid = np.zeros((batch, length), bool)
    for i, b in slots:
        positions[i, b] = items_per_object[b][i][0]
        valid[b, i] = True
    index = torch.from_numpy(np.array(slots, np.int64).T.copy()).to(device, non_blocking=True)
    values[index[0], index[1]] = torch.stack([items_per_object[b][i][1] for i, b in slots])
    positions_t = torch.from_numpy(positions).to(device, non_blocking=True)
    return values, positions_t, torch.from_numpy(valid).to(device, non_blocking=True)


def _select(outputs: _FrameOutputs, order: list[int]) -> _FrameOutputs:
    index = torch.tensor(order, device=outputs.low_res_logits.device)
    return _FrameOutputs(
        object_ids=[outputs.object_ids[i] for i in order],
        low_res_logits=outputs.low_res_logits[index],
        pointers=outputs.pointers[index],
        object_score_logits=outputs.object_score_logits[index],
        mask_scores=outputs.mask_scores[index],
        prompted=outputs.prompted,
    )


def _concat_outputs(parts: list[_FrameOutputs]) -> _FrameOutputs:
    return _FrameOutputs(
        object_ids=[i for p in parts for i in p.object_ids],
        low_res_logits=torch.cat([p.low_res_logits for p in parts]),
        pointers=torch.cat([p.pointers for p in parts]),
        object_score_logits=torch.cat([p.object_score_logits for p in parts]),
        mask_scores=torch.cat([p.mask_scores for p in parts]),
        prompted=all(p.prompted for p in parts),
    )


def _batched_memory_attention(
    attention: torch.nn.Module,
    curr: torch.Tensor,
    curr_pos: torch.Tensor,
    memory: torch.Tensor,
    memory_pos: torch.Tensor,
    num_obj_ptr_tokens: int,
    batch: int,
    rows: torch.Tensor | None = None,
) -> torch.Tensor:
    """sam2's MemoryAttention forward over a batch of objects with one memory layout.

    ``curr``/``curr_pos`` are the frame's features for one object, (L, 1, C): every
    object starts from the same image features, so the first layer's self-attention and
    cross-attention queries are computed once and shared by the ``batch`` objects.
    With ``rows`` (batch,), ``curr``/``curr_pos`` are (L, B, C), B images (several
    streams), and object k starts from image ``rows[k]``: the first self-attention runs
    once per image, and its rows are gathered per object at the first cross-attention.
    ``memory``/``memory_pos`` are (L_memory, batch, C_memory), sequence-first as in sam2,
    with no padding (the caller groups objects by memory layout), so attention needs no
    mask. Returns (L, batch, C).
    """
    output = curr
    if attention.pos_enc_at_input and curr_pos is not None:
        output = output + 0.1 * curr_pos
    if attention.batch_first:
        output, curr_pos = output.transpose(0, 1), curr_pos.transpose(0, 1)
        memory, memory_pos = memory.transpose(0, 1), memory_pos.transpose(0, 1)
    # The same for every layer: made contiguous once instead of by each projection.
    memory = memory.contiguous()
    memory_with_pos = memory + memory_pos
    per_image = rows is not None  # rows of output are still images, not objects
    if per_image and not attention.batch_first:
        raise ValueError("memory attention over several images needs batch_first")
    for layer in attention.layers:
        # Until the first cross-attention, every object's state is its image's (one row
        # per image).
        output = layer._forward_sa(output, curr_pos)
        normed = layer.norm2(output)
        query = normed + curr_pos if layer.pos_enc_at_cross_attn_queries else normed
        keys = memory_with_pos if layer.pos_enc_at_cross_attn_keys else memory
        attended = _rope_cross_attention(
            layer.cross_attn_image,
            query,
            keys,
            memory,
            num_obj_ptr_tokens,
            batch,
            rows=rows if per_image else None,
        )
        if per_image:
            output, curr_pos, per_image = output[rows], curr_pos[rows], False
        output = output + layer.dropout2(attended)  # broadcasts the shared row to the batch
        normed = layer.norm3(output)
        output = output + layer.dropout3(
            layer.linear2(layer.dropout(layer.activation(layer.linear1(normed))))
        )
    output = attention.norm(output)
    if attention.batch_first:
        output = output.transpose(0, 1)
    return output


def _rope_cross_attention(
    attn: torch.nn.Module,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    num_k_exclude_rope: int,
    batch: int,
    rows: torch.Tensor | None = None,
) -> torch.Tensor:
    """sam2's RoPEAttention forward over a batch of objects.

    Inputs are batch-first; ``q`` may hold one row shared by all ``batch`` objects
    (it is projected and rotated once, then broadcast), or with ``rows`` one row per
    image, gathered per object.
    """
    from sam2.modeling.position_encoding import apply_rotary_enc

    q = attn._separate_heads(attn.q_proj(q), attn.num_heads)
    k = attn._separate_heads(attn.k_proj(k), attn.num_heads)
    v = attn._separate_heads(attn.v_proj(v), attn.num_heads)
    side = math.sqrt(q.shape[-2])
    if attn.freqs_cis.shape[0] != q.shape[-2] or attn.freqs_cis.device != q.device:
        attn.freqs_cis = attn.compute_cis(end_x=side, end_y=side).to(q.device)
    num_k_rope = k.size(-2) - num_k_exclude_rope
    q, k_rope = apply_rotary_enc(
        q, k[:, :, :num_k_rope], freqs_cis=attn.freqs_cis, repeat_freqs_k=attn.rope_k_repeat
    )
    k = torch.cat([k_rope, k[:, :, num_k_rope:]], dim=2)
    if rows is not None:
        q = q[rows]
    elif q.shape[0] != batch:
        q = q.expand(batch, -1, -1, -1)
    out = F.scaled_dot_product_attention(q, k, v)
    return attn.out_proj(attn._recombine_heads(out))
