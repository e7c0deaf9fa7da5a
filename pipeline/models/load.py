"""`load_trained`: rebuild a models/<ds>/<model>/ directory (config.json + model.safetensors) offline."""

from __future__ import annotations

from pathlib import Path

import torch

from pipeline import paths
from pipeline.artifacts import ModelConfig, retrain
from pipeline.errors import TextbenchError
from pipeline.models.registry import BuildContext, Classifier, build_model


def load_weights(model: torch.nn.Module, path: Path) -> None:
    """Load a safetensors state dict into `model`; a corrupt or mismatched file is a TextbenchError."""
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
    except Exception as e:  # safetensors raises several types for truncated/garbled files
        raise TextbenchError(
            f"{path}: corrupt or unreadable checkpoint ({type(e).__name__}: {e}); "
            f"retrain (textbench train) to rebuild it"
        ) from None
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise TextbenchError(
            f"{path}: weights do not fit the architecture in config.json ({str(e).splitlines()[0]}); retrain the model"
        ) from None


def load_trained(model_dir: str | Path) -> tuple[Classifier, ModelConfig]:
    """Rebuild a trained model from its config.json (offline, no download) and best weights; eval mode."""
    model_dir = Path(model_dir)
    cfg = ModelConfig.of(model_dir)
    ctx = BuildContext(
        num_labels=cfg.num_labels,
        vocab_size=cfg.vocab_size,
        pad_id=cfg.pad_id,
        max_len=cfg.max_len,
        encoder_config=cfg.encoder_config,
    )
    try:
        model, _ = build_model(cfg.model, ctx, cfg.arch)
    except TextbenchError as e:  # an arch the code cannot build: the file is at fault, not params.yaml
        raise TextbenchError(f"{model_dir / paths.CONFIG}: {e}; {retrain(model_dir)}") from None
    load_weights(model, model_dir / paths.WEIGHTS)
    return model.eval(), cfg
