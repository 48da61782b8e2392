"""Pictures for a reviewer: the champion's most confidently wrong test images, and where it looks per class.

Where it looks is Grad-CAM (Selvaraju et al., 2017) on the model's deepest convolution whose maps still have
MIN_MAP_SIDE pixels a side: the feature maps weighted
by the mean gradient of the class's logit over each map, summed, rectified and scaled to the image. A model with
no convolution (mlp, vit) gets the gradient of the logit with respect to the input pixels (a saliency map).
Written as PNG grids that DVC shows as image plots.
"""

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from fer.core.errors import FerError
from fer.core.storage import atomic_path
from fer.data.datasets import load_split
from fer.data.rawdata import TEST
from fer.evaluate.records import Evaluation, PredictionRow, read_predictions
from fer.runtime.checkpoint import load_checkpoint
from fer.runtime.inputs import model_input
from fer.runtime.record import ModelRecord

TILE = 96  # pixels a test image is drawn at
CAPTION = 26  # pixels of text under each tile (two lines of PIL's default font)
ERRORS_SHOWN = 16
PER_CLASS = 4  # test images a class's activation maps are drawn on
MIN_MAP_SIDE = 6  # the coarsest feature maps Grad-CAM is taken from


def confidently_wrong(rows: list[PredictionRow], n: int = ERRORS_SHOWN) -> list[PredictionRow]:
    """The n wrong predictions made with the highest confidence, most confident first (ties: lower image)."""
    return sorted((row for row in rows if not row.correct), key=lambda row: (-row.confidence, row.image))[:n]


def _tile(image: np.ndarray, heat: np.ndarray | None = None) -> Image.Image:
    grey = Image.fromarray(image).resize((TILE, TILE), Image.Resampling.BILINEAR).convert("RGB")
    if heat is None:
        return grey
    # Red where the model looks, over the face in grey.
    heat = np.asarray(Image.fromarray(np.uint8(heat * 255)).resize((TILE, TILE), Image.Resampling.BILINEAR))
    overlay = np.zeros((TILE, TILE, 3), np.uint8)
    overlay[..., 0] = heat
    return Image.blend(grey, Image.fromarray(overlay), 0.45)


def _save_grid(tiles: list[tuple[Image.Image, str]], columns: int, path: str | Path) -> None:
    rows = max(1, -(-len(tiles) // columns))
    canvas = Image.new("RGB", (columns * TILE, rows * (TILE + CAPTION)), "white")
    draw = ImageDraw.Draw(canvas)
    for k, (tile, caption) in enumerate(tiles):
        left, top = (k % columns) * TILE, (k // columns) * (TILE + CAPTION)
        canvas.paste(tile, (left, top))
        draw.multiline_text((left + 2, top + TILE + 1), caption, fill="black", spacing=1)
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")


def draw_confident_errors(images: np.ndarray, rows: list[PredictionRow], path: str | Path) -> None:
    """A grid of the most confidently wrong test images, each captioned with its true and predicted label."""
    wrong = confidently_wrong(rows)
    tiles = [
        (_tile(images[row.image]), f"true {row.actual}\npred {row.predicted} {row.confidence:.0%}") for row in wrong
    ]
    _save_grid(tiles or [(_tile(np.full((8, 8), 255, np.uint8)), "no wrong\nprediction")], 4, path)


def _cam_layer(model: torch.nn.Module, x: torch.Tensor) -> torch.nn.Conv2d | None:
    """The deepest convolution whose maps are at least MIN_MAP_SIDE on a side for input x (the last one if none
    is): an ImageNet net's last maps on a 48-px face are 2 x 2, one value spread over the whole face."""
    convs = [module for module in model.modules() if isinstance(module, torch.nn.Conv2d)]
    sides = {}

    def measure(module, _inputs, output) -> None:  # a hook that returned a value would replace the output
        sides[module] = min(output.shape[-2:])

    hooks = [conv.register_forward_hook(measure) for conv in convs]
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for hook in hooks:
            hook.remove()
    fine = [conv for conv in convs if sides.get(conv, 0) >= MIN_MAP_SIDE]
    return (fine or convs or [None])[-1]


def activation_maps(model: torch.nn.Module, record: ModelRecord, images: np.ndarray, classes: list[int]) -> np.ndarray:
    """(N, H, W) maps in [0, 1] of where the model looks for classes[i] in images[i] (uint8 (N, H, W))."""
    for module in model.modules():  # an in-place activation would overwrite the feature maps Grad-CAM reads
        if hasattr(module, "inplace"):
            module.inplace = False
    model.eval()
    x = model_input(torch.from_numpy(np.ascontiguousarray(images)), record.input_spec).requires_grad_()
    conv, captured = _cam_layer(model, x), {}

    def keep(_module, _inputs, output):
        output.retain_grad()
        captured["maps"] = output

    handle = conv.register_forward_hook(keep) if conv is not None else None
    try:
        logits = model(x)
        logits.gather(1, torch.tensor(classes).unsqueeze(1)).sum().backward()
    finally:
        if handle is not None:
            handle.remove()
    if conv is not None:
        maps = captured["maps"]
        weights = maps.grad.mean((2, 3), keepdim=True)
        heat = F.relu((weights * maps).sum(1, keepdim=True))
    else:
        heat = x.grad.abs()
    heat = F.interpolate(heat, size=images.shape[1:], mode="bilinear", align_corners=False)[:, 0]
    peak = heat.flatten(1).amax(1).clamp_min(1e-12)[:, None, None]
    return (heat / peak).detach().numpy()


def draw_activation_maps(
    model: torch.nn.Module, record: ModelRecord, images: np.ndarray, labels: np.ndarray, path: str | Path
) -> None:
    """Per class a row of PER_CLASS test images of it (attributes: images showing it), each overlaid with where
    the model looks for that class; a class without test images is left out."""
    shown, wanted = [], []
    showing = record.label_set.head.showing(labels)
    for k in range(len(record.classes)):
        picked = np.flatnonzero(showing[:, k])[:PER_CLASS]
        shown += picked.tolist()
        wanted += [k] * len(picked)
    if not shown:
        raise FerError("the test split has no images to draw activation maps on")
    heat = activation_maps(model, record, images[shown], wanted)
    has_conv = any(isinstance(module, torch.nn.Conv2d) for module in model.modules())
    method = "Grad-CAM" if has_conv else "saliency"
    tiles = [(_tile(images[i], h), f"{record.classes[k]}\n{method}") for i, k, h in zip(shown, wanted, heat)]
    _save_grid(tiles, PER_CLASS, path)


def draw_gallery(run: Evaluation, split_dir: str | Path, errors_path: str | Path, maps_path: str | Path) -> None:
    """Both pictures for one evaluated run (the champion's), on the test split it was evaluated on."""
    images, labels = load_split(split_dir, TEST)
    draw_confident_errors(images, read_predictions(run.predictions), errors_path)
    model, record = load_checkpoint(run.checkpoint, expected_sha256=run.sha256)
    draw_activation_maps(model, record, images, labels, maps_path)
