"""Checkpoints: a state_dict plus the metadata needed to rebuild and feed the model, safe to load."""

from pathlib import Path

import torch

from fer.atomic import atomic_path
from fer.errors import FerError
from fer.models import Normalization, build_model


def save_checkpoint(path: str | Path, state_dict: dict, meta: dict) -> None:
    """meta: arch, classes, image_size, normalization {mean, std}, options, dropout, and the params used."""
    with atomic_path(path) as tmp:
        torch.save({"state_dict": state_dict, "meta": meta}, tmp)


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict]:
    """The model (eval mode, on `device`) and its metadata; weights_only=True so loading runs no code."""
    path = Path(path)
    if not path.is_file():
        raise FerError(f"{path}: checkpoint not found; run the train stage first (dvc repro)")
    checkpoint = torch.load(path, map_location=device, weights_only=True)
    meta = checkpoint["meta"]
    model, _ = build_model(meta["arch"], len(meta["classes"]), meta["image_size"], pretrained=False,
                           dropout=meta["dropout"], **meta["options"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(device).eval(), meta


def normalization_of(meta: dict) -> Normalization:
    return Normalization(**meta["normalization"])
