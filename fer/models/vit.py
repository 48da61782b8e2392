"""Vision Transformer (transformers' ViTForImageClassification): small from scratch, or a pretrained checkpoint
adapted to grey input of any image size."""

from pathlib import Path

import torch
from torch import nn
from transformers import ViTConfig, ViTForImageClassification

from fer.core.archs import VIT_SCRATCH_SIZES
from fer.core.errors import FerError, one_line
from fer.models.adapt import fresh_head, make_grey, required_option
from fer.models.input_spec import FROM_SCRATCH, Normalization

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
        vit = _load_pretrained(pretrained, options, num_classes)
        make_grey(vit.vit.embeddings.patch_embeddings.projection)
        # the patch embedding checks the channel count of its input against these
        vit.vit.embeddings.patch_embeddings.num_channels = vit.config.num_channels = 1
        normalization = PRETRAINED_INPUT
    else:
        vit = _scratch_vit(image_size, num_classes, options)
        normalization = FROM_SCRATCH
    fresh_head(vit, "classifier", num_classes, dropout)
    return ViTLogits(vit), normalization


class ConvStem(nn.Sequential):
    """transformers reads the patch projection's `weight` (for its dtype); the stem answers with its last conv's."""

    @property
    def weight(self) -> torch.Tensor:
        return self[-1].weight


def _conv_stem(patch_size: int, hidden_size: int) -> ConvStem:
    """Early convolutions in place of the one patch_size x patch_size projection (Xiao et al. 2021, "Early
    Convolutions Help Transformers See Better"): stride-2 3x3 conv-BN-ReLU stages down to the same patch grid,
    then a 1x1 projection to the hidden size. A plain ViT trained from scratch on a few thousand images for a
    few hundred steps stays at the class prior (measured here: 0.25 test accuracy); the stem's locality is what
    lets it learn in that budget."""
    stages = patch_size.bit_length() - 1
    if patch_size != 2**stages or stages == 0:
        raise FerError(f"vit: conv_stem needs patch_size to be a power of two >= 2 (got {patch_size})")
    layers: list[nn.Module] = []
    in_channels = 1
    for stage in range(stages):
        out_channels = max(16, hidden_size >> (stages - 1 - stage))
        layers += [
            nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        ]
        in_channels = out_channels
    layers.append(nn.Conv2d(in_channels, hidden_size, kernel_size=1))
    return ConvStem(*layers)


def _scratch_vit(image_size: int, num_classes: int, options: dict) -> ViTForImageClassification:
    sizes = {name: required_option("vit", options, name) for name in VIT_SCRATCH_SIZES}
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
        intermediate_size=options.get("intermediate_size", 4 * sizes["hidden_size"]),  # the ViT papers' ratio
        **sizes,
    )
    vit = ViTForImageClassification(config)
    if options.get("conv_stem", False):
        vit.vit.embeddings.patch_embeddings.projection = _conv_stem(config.patch_size, config.hidden_size)
    return vit


def _load_pretrained(pretrained: bool | str, options: dict, num_classes: int) -> ViTForImageClassification:
    """pretrained=True: the hub checkpoint named by the `checkpoint` option (or its copy in the HF cache); a
    string: a save_pretrained folder."""
    if isinstance(pretrained, str) and not Path(pretrained).is_dir():
        # from_pretrained would take a missing folder for a hub id and fail with a confusing message
        raise FerError(f"vit: pretrained folder {pretrained} not found (expected a save_pretrained folder)")
    source = required_option("vit (pretrained)", options, "checkpoint") if pretrained is True else pretrained
    try:
        # the checkpoint's head (if any) has another number of classes; fresh_head replaces it anyway
        return ViTForImageClassification.from_pretrained(source, num_labels=num_classes, ignore_mismatched_sizes=True)
    except OSError as err:
        raise FerError(
            f"vit: could not load the pretrained checkpoint {source} ({one_line(err)}); run once with internet "
            "to fill the Hugging Face cache (~/.cache/huggingface or $HF_HOME), or set models.vit.pretrained "
            "to a local save_pretrained folder, or set pretrained: false"
        ) from None
