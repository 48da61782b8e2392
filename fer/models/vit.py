"""Vision Transformer (transformers' ViTForImageClassification): small from scratch, or a pretrained checkpoint
adapted to grey input of any image size."""

from pathlib import Path

import torch
from torch import nn
from transformers import ViTConfig, ViTForImageClassification

from fer.core.errors import FerError, one_line
from fer.models.adapt import check_options, fresh_head, make_grey
from fer.models.input_spec import FROM_SCRATCH, Normalization

DEFAULT_CHECKPOINT = "google/vit-base-patch16-224-in21k"
SCRATCH_DEFAULTS = {"patch_size": 6, "hidden_size": 192, "num_hidden_layers": 4, "num_attention_heads": 3}
# google/vit-* checkpoints were trained on input scaled to [-1, 1].
PRETRAINED_INPUT = Normalization(mean=0.5, std=0.5)


class ViTLogits(nn.Module):
    """Returns a plain logits tensor, like every other registry model, instead of an HF output object."""

    def __init__(self, vit: ViTForImageClassification):
        super().__init__()
        self.vit = vit

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        # interpolating the position embeddings lets a checkpoint trained at 224 run at any size; it is a
        # no-op when the size matches the config
        return self.vit(pixel_values=pixel_values, interpolate_pos_encoding=True).logits


def build_vit(num_classes, image_size, pretrained, dropout, **options) -> tuple[nn.Module, Normalization]:
    if pretrained:
        check_options("vit (pretrained)", options, allowed=("checkpoint",))
        vit = _load_pretrained(pretrained, options.get("checkpoint", DEFAULT_CHECKPOINT), num_classes)
        make_grey(vit.vit.embeddings.patch_embeddings.projection)
        # the patch embedding checks the channel count of its input against these
        vit.vit.embeddings.patch_embeddings.num_channels = vit.config.num_channels = 1
        normalization = PRETRAINED_INPUT
    else:
        check_options("vit", options, allowed=(*SCRATCH_DEFAULTS, "intermediate_size"))
        vit = _scratch_vit(image_size, num_classes, options)
        normalization = FROM_SCRATCH
    fresh_head(vit, "classifier", num_classes, dropout)
    return ViTLogits(vit), normalization


def _scratch_vit(image_size: int, num_classes: int, options: dict) -> ViTForImageClassification:
    sizes = SCRATCH_DEFAULTS | options
    # transformers silently builds a lopsided attention (head size rounded down) otherwise
    if sizes["hidden_size"] % sizes["num_attention_heads"]:
        raise FerError(
            f"vit: hidden_size {sizes['hidden_size']} must be a multiple of "
            f"num_attention_heads {sizes['num_attention_heads']}"
        )
    config = ViTConfig(
        image_size=image_size,
        num_channels=1,
        num_labels=num_classes,
        intermediate_size=options.get("intermediate_size", 4 * sizes["hidden_size"]),
        **{name: sizes[name] for name in SCRATCH_DEFAULTS},
    )
    return ViTForImageClassification(config)


def _load_pretrained(pretrained: bool | str, checkpoint: str, num_classes: int) -> ViTForImageClassification:
    """pretrained=True: the hub checkpoint (or its copy in the HF cache); a string: a save_pretrained folder."""
    if isinstance(pretrained, str) and not Path(pretrained).is_dir():
        # from_pretrained would take a missing folder for a hub id and fail with a confusing message
        raise FerError(f"vit: pretrained folder {pretrained} not found (expected a save_pretrained folder)")
    source = checkpoint if pretrained is True else pretrained
    try:
        # the checkpoint's head (if any) has another number of classes; fresh_head replaces it anyway
        return ViTForImageClassification.from_pretrained(
            source, num_labels=num_classes, ignore_mismatched_sizes=True
        )
    except OSError as err:
        raise FerError(
            f"vit: could not load the pretrained checkpoint {source} ({one_line(err)}); run once with internet "
            "to fill the Hugging Face cache (~/.cache/huggingface or $HF_HOME), or set models.vit.pretrained "
            "to a local save_pretrained folder, or set pretrained: false"
        ) from None
