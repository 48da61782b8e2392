"""The champion's gallery: its most confidently wrong test images and its class-activation maps, as PNG grids."""

import numpy as np
import pandas as pd
import torch
import torchvision
from conftest import REPO_PARAMS
from PIL import Image

from fer.core.labels import FER2013
from fer.data.datasets import save_images
from fer.data.sources.synthetic import generate
from fer.evaluate.evaluation import evaluate_checkpoint, write_evaluation
from fer.evaluate.gallery import (
    CAPTION,
    ERRORS_SHOWN,
    MIN_MAP_SIDE,
    PER_CLASS,
    TILE,
    _cam_layer,
    activation_maps,
    confidently_wrong,
    draw_gallery,
)
from fer.evaluate.records import PredictionRow
from fer.runtime.checkpoint import load_checkpoint


def _row(image: int, correct: bool, confidence: float) -> PredictionRow:
    return PredictionRow(
        image=image,
        actual="happy",
        predicted="happy" if correct else "sad",
        correct=correct,
        p_true=0.1,
        confidence=confidence,
    )


def test_the_most_confidently_wrong_come_first_and_right_answers_never():
    rows = [_row(0, False, 0.5), _row(1, True, 0.99), _row(2, False, 0.9), _row(3, False, 0.9)]
    assert [row.image for row in confidently_wrong(rows, 2)] == [2, 3]


class _TopHalfNet(torch.nn.Module):
    """A 1x1 convolution that passes the image through, then class k's logit is the mean of the map times k."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 1, 1)
        torch.nn.init.ones_(self.conv.weight)
        torch.nn.init.zeros_(self.conv.bias)

    def forward(self, x):
        return self.conv(x).mean((1, 2, 3))[:, None] * torch.arange(7.0)


def test_grad_cam_lights_up_where_the_last_convolution_fires(tiny_checkpoint):
    _, record = load_checkpoint(tiny_checkpoint)
    images = np.zeros((1, 48, 48), np.uint8)
    images[:, :24] = 255  # only the top half fires the convolution
    spec = record.model_copy(update={"mean": 0.0, "std": 1.0})
    heat = activation_maps(_TopHalfNet(), spec, images, [3])[0]
    assert heat.shape == (48, 48) and heat.max() == 1.0
    assert heat[:20].mean() > 0.9 and heat[28:].max() < 0.1


def test_the_gallery_of_a_model_is_two_pngs_of_labelled_grids(tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ds = generate(70, 48, seed=5, photo=False)
    images, labels = np.stack(ds.images), np.asarray(ds.labels)
    save_images(tmp_path / "split" / "test", images, pd.DataFrame({"label": labels, "source": ds.source}), ds.label_set)
    evaluated, predictions = evaluate_checkpoint(
        tiny_checkpoint, images, labels, FER2013, REPO_PARAMS.evaluate, predictions_path="predictions.json"
    )
    write_evaluation(evaluated, tmp_path / "evaluation.json")
    draw_gallery(evaluated.record, tmp_path / "split", tmp_path / "errors.png", tmp_path / "maps.png")

    wrong = min(ERRORS_SHOWN, int((predictions != labels).sum()))
    with Image.open(tmp_path / "errors.png") as grid:
        assert grid.size == (4 * TILE, -(-wrong // 4) * (TILE + CAPTION))
    present = sum(min(PER_CLASS, int((labels == k).sum())) for k in range(len(FER2013.classes)))
    with Image.open(tmp_path / "maps.png") as grid:
        assert grid.size == (PER_CLASS * TILE, -(-present // PER_CLASS) * (TILE + CAPTION))
        assert np.asarray(grid)[..., 0].astype(int).sum() > np.asarray(grid)[..., 2].astype(int).sum()  # red heat


def test_grad_cam_takes_the_deepest_maps_fine_enough_to_show_a_place():
    """MobileNetV2's last maps on a 48-px face are 2 x 2 (one value over the whole face): a finer layer is used."""
    model = torchvision.models.mobilenet_v2(num_classes=7).eval()
    x = torch.zeros(1, 3, 48, 48)
    shapes = {}
    hooks = [
        m.register_forward_hook(lambda m, _i, out: shapes.__setitem__(m, tuple(out.shape[-2:])) and None)
        for m in model.modules()
        if isinstance(m, torch.nn.Conv2d)
    ]
    model(x)
    for hook in hooks:
        hook.remove()
    layer = _cam_layer(model, x)
    assert shapes[list(shapes)[-1]] == (2, 2)
    assert min(shapes[layer]) >= MIN_MAP_SIDE
    assert all(min(shapes[m]) < MIN_MAP_SIDE for m in list(shapes)[list(shapes).index(layer) + 1 :])
