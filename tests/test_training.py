import numpy as np
import pandas as pd
import pytest
import torch

from fer.augment import augment, random_erasing
from fer.batches import model_input, predict_logits, resolve_device, to_device
from fer.checkpoints import load_checkpoint, normalization_of
from fer.datasets import save_images
from fer.errors import FerError
from fer.models import Normalization, build_model
from fer.params import AugmentParams, ModelParams, TrainParams, parse_params
from fer.sources.synthetic import generate
from fer.training import train_model


@pytest.fixture(scope="module")
def split_dir(tmp_path_factory):
    """A tiny synthetic train/val split on disk, in the split stage's format."""
    root = tmp_path_factory.mktemp("split")
    for name, seed in (("train", 1), ("val", 2)):
        ds = generate(210 if name == "train" else 70, 48, seed)
        save_images(root / name, np.stack(ds.images), pd.DataFrame({"label": ds.labels}))
    return root


TINY = TrainParams(epochs=2, batch_size=32, device="cpu", patience=5)


def _fit_mlp(split_dir, tmp_path, cfg=TINY, name="mlp.pt"):
    spec = ModelParams(arch="mlp", image_size=48, options={"hidden": [32]})
    return train_model("mlp", spec, cfg, seed=7, split_dir=split_dir, checkpoint_path=tmp_path / name)


def test_cpu_training_repeats_exactly_for_a_fixed_seed(split_dir, tmp_path):
    a = _fit_mlp(split_dir, tmp_path, name="a.pt")
    b = _fit_mlp(split_dir, tmp_path, name="b.pt")
    assert [h.train_loss for h in a.history] == [h.train_loss for h in b.history]
    assert [h.val_acc for h in a.history] == [h.val_acc for h in b.history]
    for key in a.best_state:
        assert torch.equal(a.best_state[key], b.best_state[key])


def test_early_stopping_keeps_the_best_epoch(split_dir, tmp_path):
    frozen = TINY.model_copy(update={"lr": 1e-12, "epochs": 10, "patience": 2, "warmup_epochs": 0})
    result = _fit_mlp(split_dir, tmp_path, frozen)
    assert len(result.history) == 3  # epoch 1 is best; two epochs without improvement stop it
    assert result.best_epoch == 1


def test_checkpoint_round_trip_gives_the_same_predictions(split_dir, tmp_path):
    result = _fit_mlp(split_dir, tmp_path)
    model, meta = load_checkpoint(tmp_path / "mlp.pt")
    assert meta["arch"] == "mlp" and len(meta["classes"]) == 7 and meta["val_acc"] == result.best_val_acc
    images = torch.randint(0, 256, (5, 48, 48), dtype=torch.uint8)
    reference, norm = build_model("mlp", 7, 48, dropout=meta["dropout"], hidden=[32])
    reference.load_state_dict(result.best_state)
    assert torch.allclose(predict_logits(model, images, 48, normalization_of(meta)),
                          predict_logits(reference, images, 48, norm))
    with pytest.raises(FerError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_training_learns_an_easy_task(tmp_path):
    """Brightness encodes the class: any working loop gets this nearly right in a few epochs."""
    rng = np.random.default_rng(0)
    for name, n in (("train", 280), ("val", 70)):
        labels = np.arange(n) % 7
        images = np.clip(20 + 30 * labels[:, None, None] + rng.integers(-8, 9, (n, 32, 32)), 0, 255)
        save_images(tmp_path / name, images.astype(np.uint8), pd.DataFrame({"label": labels}))
    cfg = TINY.model_copy(update={"epochs": 5, "lr": 3e-3})
    spec = ModelParams(arch="cnn", image_size=32, options={"widths": [8, 16]})
    result = train_model("cnn", spec, cfg, 0, tmp_path, tmp_path / "cnn.pt")
    assert result.best_val_acc > 0.8
    assert result.history[-1].train_loss < result.history[0].train_loss


def test_augmentation_is_per_image_and_repeatable():
    x = torch.rand(64, 1, 48, 48)
    p = AugmentParams(flip=True, degrees=10, translate=0.1, scale=0.1, erasing=0.5)
    a = augment(x, p, torch.Generator().manual_seed(0))
    b = augment(x, p, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b)
    per_image_change = (a - x).abs().flatten(1).mean(1)
    assert per_image_change.std() > 0  # images got different transforms


def test_flip_only_mirrors_about_half_the_images():
    x = torch.rand(200, 1, 16, 16)
    p = AugmentParams(flip=True, degrees=0, translate=0, scale=0, erasing=0)
    out = augment(x, p, torch.Generator().manual_seed(0))
    mirrored = torch.isclose(out, x.flip(-1), atol=1e-5).flatten(1).all(1)
    unchanged = torch.isclose(out, x, atol=1e-5).flatten(1).all(1)
    assert (mirrored | unchanged).all()
    assert 60 < mirrored.sum() < 140


def test_erasing_blanks_a_patch_only_when_drawn():
    x = torch.zeros(50, 1, 32, 32)
    assert torch.equal(random_erasing(x, 0.0, torch.Generator().manual_seed(0)), x)
    erased = random_erasing(x, 1.0, torch.Generator().manual_seed(0))
    area = (erased == 0.5).flatten(1).float().mean(1)
    assert ((area > 0.005) & (area < 0.3)).all()


def test_model_input_resizes_and_normalises():
    images = torch.full((3, 48, 48), 255, dtype=torch.uint8)
    x = model_input(images, 64, Normalization(0.5, 0.25))
    assert x.shape == (3, 1, 64, 64) and torch.allclose(x, torch.full_like(x, 2.0))


def test_train_config_merges_model_overrides_and_rejects_unknown_keys():
    base = {"models": {"cnn": {"arch": "cnn", "lr": 0.5, "epochs": 2}}}
    params = parse_params(base)
    cfg = params.train_config("cnn")
    assert cfg.lr == 0.5 and cfg.epochs == 2 and cfg.batch_size == params.train.batch_size
    with pytest.raises(FerError, match="models.cnn.*unknown key 'lrr'"):
        parse_params({"models": {"cnn": {"arch": "cnn", "lrr": 0.5}}})
    with pytest.raises(FerError, match="models.cnn.lr"):
        parse_params({"models": {"cnn": {"arch": "cnn", "lr": -1}}}).train_config("cnn")
    with pytest.raises(FerError, match="valid names: cnn"):
        parse_params({**base, "model": "resnet"})
    with pytest.raises(FerError, match="models.cnn.arch 'alexnet' is unknown"):
        parse_params({"models": {"cnn": {"arch": "alexnet"}}})


def test_asking_for_cuda_without_a_gpu_is_one_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(FerError, match="train.device"):
        resolve_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_path_trains_with_data_on_the_device_in_bf16(split_dir, tmp_path):
    cfg = TINY.model_copy(update={"device": "cuda"})
    spec = ModelParams(arch="cnn", image_size=48, options={"widths": [8, 16]})
    result = train_model("cnn", spec, cfg, 0, split_dir, tmp_path / "cnn.pt")
    assert result.history[-1].images_per_second > 0
    images, _ = to_device(np.zeros((4, 48, 48), np.uint8), np.zeros(4, np.int64), torch.device("cuda"))
    assert images.is_cuda and images.dtype == torch.uint8
