"""Construction of a SAM 2.1 model (SAM2Base) from the sam2 package's configs.

The model is built with the same post-processing settings as sam2's own video
predictor (dynamic multimask fallback for single-mask outputs, binarised masks in the
memory of prompted frames), so our streaming segmenter keeps SAM 2's tracking
semantics. sam2's hole filling needs its optional CUDA extension and is not used.
"""

from __future__ import annotations

import logging

import torch

from seg2track_ros.engine.config import (
    CPU_OBJECTS_PER_CALL,
    MODEL_SIZES,
    ConfigError,
    SegmenterConfig,
)

_LOG = logging.getLogger(__name__)

SAM2_CONFIGS = {
    "tiny": "configs/sam2.1/sam2.1_hiera_t.yaml",
    "small": "configs/sam2.1/sam2.1_hiera_s.yaml",
    "base_plus": "configs/sam2.1/sam2.1_hiera_b+.yaml",
    "large": "configs/sam2.1/sam2.1_hiera_l.yaml",
}

# The settings sam2's video predictor applies on top of the model configs.
VIDEO_OVERRIDES = (
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_via_stability=true",
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_delta=0.05",
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh=0.98",
    "++model.binarize_mask_from_pts_for_mem_enc=true",
)


def resolve_device(device: str) -> torch.device:
    """torch.device for 'auto', 'cpu', 'cuda' or 'cuda:N'; a clear error when CUDA is missing."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device '{device}' requested but CUDA is not available")
        index = resolved.index or 0
        if index >= torch.cuda.device_count():
            raise ConfigError(
                f"device '{device}' requested but only"
                f" {torch.cuda.device_count()} CUDA devices exist"
            )
    return resolved


def build_sam2_model(model: str, image_size: int, device: torch.device) -> torch.nn.Module:
    """A SAM2Base with random weights for `model` at `image_size`, in eval mode on `device`."""
    if model not in MODEL_SIZES:
        raise ConfigError(f"model must be one of {', '.join(MODEL_SIZES)}, got {model!r}")
    # Imported here: hydra and sam2 are heavy and only needed when a model is built.
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    if not GlobalHydra.instance().is_initialized():
        # sam2/__init__.py initialises hydra on the sam2 package; do it if someone reset it.
        initialize_config_module("sam2", version_base="1.2")
    overrides = [*VIDEO_OVERRIDES, f"++model.image_size={int(image_size)}"]
    cfg = compose(config_name=SAM2_CONFIGS[model], overrides=overrides)
    OmegaConf.resolve(cfg)
    sam = instantiate(cfg.model, _recursive_=True)
    return sam.to(device).eval()


RANDOM_WEIGHTS_SEED = 0
RANDOM_WEIGHTS_WARNING = (
    "checkpoint 'random': SAM 2 runs with RANDOM WEIGHTS. Masks, scores and tracks are "
    "meaningless; use this for tests and speed/memory benchmarks only. Get real weights "
    "with: seg2track download-checkpoints --model {model}"
)


def build_segmenter(config: SegmenterConfig):
    """The SAM 2 streaming segmenter described by `config`, with its weights loaded.

    Raises ConfigError for invalid settings and checkpoints.CheckpointError (with the
    download command where a file is missing) for checkpoint problems.
    """
    from seg2track_ros.engine.checkpoints import (
        CheckpointNotFoundError,
        load_checkpoint,
        resolve_checkpoint,
    )
    from seg2track_ros.engine.sam2_stream import Sam2StreamSegmenter

    config.validate()
    device = resolve_device(config.device)
    path = resolve_checkpoint(config.model, config.checkpoint)
    if path is not None and not path.is_file():
        # Before building the model: a missing file should fail fast.
        raise CheckpointNotFoundError(path, config.model)
    # Random weights are drawn from a fixed seed, so every process (a node, `seg2track
    # run`, a benchmark) builds the same model: runs are reproducible and comparable.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_WEIGHTS_SEED)
        model = build_sam2_model(config.model, config.image_size, torch.device("cpu"))
    if path is None:
        _LOG.warning(RANDOM_WEIGHTS_WARNING.format(model=config.model))
    else:
        load_checkpoint(model, path, config.model)
        _LOG.info("loaded SAM 2.1 %s weights from %s", config.model, path)
    model = model.to(device).eval()
    if config.compile:
        # The image encoder dominates a frame with few objects; compiling it is what
        # sam2's own VOS-optimised predictor does. Default mode, not its max-autotune:
        # on an H100 autotuning the encoder alone took over 6 minutes. The per-object
        # heads are compiled by the segmenter over bucketed, padded object batches.
        model.image_encoder.forward = torch.compile(
            model.image_encoder.forward, fullgraph=True, dynamic=False
        )
    return Sam2StreamSegmenter(
        model,
        max_conditioning_frames=config.max_conditioning_frames,
        max_object_pointers=config.max_object_pointers,
        bf16=config.bf16,
        compile_backend="inductor" if config.compile else None,
        objects_per_call=_objects_per_call(config.objects_per_call, device),
    )


def _objects_per_call(configured: int, device: torch.device) -> int | None:
    """SegmenterConfig.objects_per_call resolved for ``device`` (None: all at once)."""
    if configured > 0:
        return configured
    return CPU_OBJECTS_PER_CALL if device.type == "cpu" else None
