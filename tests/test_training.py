import copy
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import REPO, REPO_PARAMS, train_params

from fer.core.errors import FerError
from fer.core.labels import FER2013
from fer.core.params import AugmentParams, ModelParams, parse_params
from fer.data.datasets import load_split, save_images
from fer.models import build_model
from fer.models.input_spec import InputSpec
from fer.runtime.checkpoint import load_checkpoint
from fer.runtime.device import clock, resolve_device
from fer.runtime.inference import predict_logits
from fer.runtime.inputs import model_input, to_device
from fer.train.augment import augment, random_erasing
from fer.train.batchnorm import recompute_batchnorm_statistics
from fer.train.job import TrainJob
from fer.train.loop import TrainingData, _schedule, fit, parameter_groups
from fer.train.trainer import train_model

TINY = train_params(epochs=2, batch_size=32, patience=5)


def _fit_mlp(split_dir, tmp_path, cfg=TINY, name="mlp.pt"):
    spec = ModelParams(arch="mlp", image_size=48, options={"hidden": [32]})
    return train_model(TrainJob("mlp", spec, cfg, seed=7, split_dir=split_dir), tmp_path / name)


def test_cpu_training_repeats_exactly_for_a_fixed_seed(tiny_split, tmp_path):
    a = _fit_mlp(tiny_split, tmp_path, name="a.pt")
    b = _fit_mlp(tiny_split, tmp_path, name="b.pt")
    assert [h.train_loss for h in a.history] == [h.train_loss for h in b.history]
    assert [h.val_acc for h in a.history] == [h.val_acc for h in b.history]
    for key in a.best_state:
        assert torch.equal(a.best_state[key], b.best_state[key])


def test_early_stopping_keeps_the_best_epoch(tiny_split, tmp_path):
    frozen = TINY.model_copy(update={"lr": 1e-12, "epochs": 10, "patience": 2, "warmup_fraction": 0.0})
    result = _fit_mlp(tiny_split, tmp_path, frozen)
    assert len(result.history) == 3  # epoch 1 is best; two epochs without improvement stop it
    assert result.best_epoch == 1


def test_checkpoint_round_trip_gives_the_same_predictions(tiny_split, tmp_path):
    result = _fit_mlp(tiny_split, tmp_path)
    model, record = load_checkpoint(tmp_path / "mlp.pt")
    assert record.name == "mlp" and record.arch == "mlp" and len(record.classes) == 7
    assert record.val_acc == result.best_val_acc and record.tuned_from is None
    images = torch.randint(0, 256, (5, 48, 48), dtype=torch.uint8)
    reference, spec = build_model("mlp", 7, 48, dropout=record.dropout, hidden=[32])
    reference.load_state_dict(result.best_state)
    assert record.input_spec == spec
    assert torch.allclose(predict_logits(model, images, record.input_spec), predict_logits(reference, images, spec))
    with pytest.raises(FerError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")


def _brightness_task(root, n_train=280, n_val=70, side=32):
    """Brightness encodes the class: any working loop gets this nearly right in a few epochs."""
    rng = np.random.default_rng(0)
    for name, n in (("train", n_train), ("val", n_val)):
        labels = np.arange(n) % 7
        images = np.clip(20 + 30 * labels[:, None, None] + rng.integers(-8, 9, (n, side, side)), 0, 255)
        save_images(root / name, images.astype(np.uint8), pd.DataFrame({"label": labels}), FER2013)
    return root


def test_training_learns_an_easy_task(tmp_path):
    cfg = TINY.model_copy(update={"epochs": 5, "lr": 3e-3})
    spec = ModelParams(arch="cnn", image_size=32, options={"widths": [8, 16]})
    result = train_model(TrainJob("cnn", spec, cfg, 0, _brightness_task(tmp_path)), tmp_path / "cnn.pt")
    assert result.best_val_acc > 0.8
    assert result.history[-1].train_loss < result.history[0].train_loss


def _slow_batchnorm_cnn():
    torch.manual_seed(0)
    model, spec = build_model("cnn", 7, 32, widths=[8, 16])
    for layer in model.modules():
        if isinstance(layer, torch.nn.BatchNorm2d):
            layer.momentum = 0.01  # torchvision's MobileNetV3 / EfficientNet setting
    return model, spec


def _accuracy(logits, labels):
    return (logits.argmax(1) == labels).float().mean().item()


def test_slow_batchnorm_is_scored_like_a_train_mode_pass_not_the_majority_class(tmp_path):
    """With momentum 0.01 and a few steps the running statistics stay near their initial values; fit() must
    score the weights with statistics recomputed for them, as a pass in train mode (batch statistics) does."""
    root = _brightness_task(tmp_path, n_train=700, n_val=140)
    train = to_device(*load_split(root, "train"), torch.device("cpu"))
    val = to_device(*load_split(root, "val"), torch.device("cpu"))
    cfg = TINY.model_copy(
        update={
            "epochs": 2,
            "lr": 3e-3,
            "augment": AugmentParams(flip=False, degrees=0, translate=0, scale=0, erasing=0),
        }
    )
    model, spec = _slow_batchnorm_cnn()
    result = fit(model, spec, TrainingData(FER2013, train, val), cfg, seed=0)

    model.load_state_dict(result.best_state)
    with torch.no_grad():
        train_mode_acc = _accuracy(model.train()(model_input(val[0], spec)), val[1])
    assert result.best_val_acc > 0.5  # the majority class of this task is 1/7
    assert abs(result.best_val_acc - train_mode_acc) < 0.1
    assert abs(_accuracy(predict_logits(model, val[0], spec), val[1]) - result.best_val_acc) < 1e-6

    stale = copy.deepcopy(model)
    for layer in stale.modules():
        if isinstance(layer, torch.nn.BatchNorm2d):
            layer.reset_running_stats()  # what eval mode used before the recompute
    assert _accuracy(predict_logits(stale, val[0], spec), val[1]) < result.best_val_acc - 0.3


def test_recomputing_statistics_changes_no_weight_and_keeps_the_momentum():
    model, spec = _slow_batchnorm_cnn()
    weights = {k: v.clone() for k, v in model.named_parameters()}
    images = torch.randint(0, 256, (65, 32, 32), dtype=torch.uint8)
    assert recompute_batchnorm_statistics(model.eval(), images, spec) == 4
    assert not model.training
    assert all(torch.equal(weights[k], v) for k, v in model.named_parameters())
    layers = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(m.momentum == 0.01 and m.num_batches_tracked == 1 for m in layers)
    # the first layer's statistics are those of the batch itself (a plain average, not an exponential one)
    with torch.no_grad():
        conv_out = model[0](model_input(images, spec))
    assert torch.allclose(layers[0].running_mean, conv_out.mean(dim=(0, 2, 3)), atol=1e-4)


def test_a_model_without_batchnorm_is_left_alone():
    model, spec = build_model("vit", 7, 48, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2)
    assert recompute_batchnorm_statistics(model, torch.zeros(4, 48, 48, dtype=torch.uint8), spec) == 0


def test_weight_decay_spares_norm_scales_and_biases():
    model, _ = build_model("cnn", 7, 32, widths=[8])
    decayed, plain = parameter_groups(model, 0.01)
    assert decayed["weight_decay"] == 0.01 and plain["weight_decay"] == 0.0
    assert all(p.ndim > 1 for p in decayed["params"]) and all(p.ndim == 1 for p in plain["params"])
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert any(p is bn.weight for p in plain["params"]) and any(p is bn.bias for p in plain["params"])
    assert len(decayed["params"]) + len(plain["params"]) == len(list(model.parameters()))


def test_warmup_is_a_fraction_of_all_steps():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = _schedule(optimizer, TINY.model_copy(update={"epochs": 4, "warmup_fraction": 0.25}), 10)
    lrs = []
    for _ in range(40):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)  # 10 of 40 steps warm up
    assert lrs[10] == pytest.approx(1.0) and lrs[-1] < 0.01


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
    x = model_input(images, InputSpec(64, 0.5, 0.25))
    assert x.shape == (3, 1, 64, 64) and torch.allclose(x, torch.full_like(x, 2.0))


def test_train_config_merges_model_overrides_and_rejects_unknown_keys():
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    base = {**raw, "model": "cnn", "models": {"cnn": {"arch": "cnn", "lr": 0.5, "epochs": 2}}}
    params = parse_params(base)
    cfg = params.train_config("cnn")
    assert cfg.lr == 0.5 and cfg.epochs == 2 and cfg.batch_size == params.train.batch_size
    with pytest.raises(FerError, match="models.cnn.*unknown key 'lrr'"):
        parse_params({**base, "models": {"cnn": {"arch": "cnn", "lrr": 0.5}}})
    with pytest.raises(FerError, match="models.cnn.lr"):
        parse_params({**base, "models": {"cnn": {"arch": "cnn", "lr": -1}}}).train_config("cnn")
    with pytest.raises(FerError, match="valid names: cnn"):
        parse_params({**base, "model": "resnet"})
    with pytest.raises(FerError, match="models.cnn: unknown arch 'alexnet'"):
        parse_params({**base, "models": {"cnn": {"arch": "alexnet"}}})


def test_asking_for_cuda_without_a_gpu_is_one_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(FerError, match="train.device"):
        resolve_device("cuda")


def test_clock_waits_for_queued_cuda_work_before_reading_the_time(monkeypatch):
    """CUDA kernels run asynchronously: a timing read before synchronising measures the launches, not the work.
    Recorded on the CPU: synchronize and perf_counter log the order they are called in."""
    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(("synchronize", device)))
    monkeypatch.setattr("fer.runtime.device.time.perf_counter", lambda: calls.append(("perf_counter",)) or 12.5)
    cuda = torch.device("cuda")
    assert clock(cuda) == 12.5
    assert calls == [("synchronize", cuda), ("perf_counter",)]
    calls.clear()
    assert clock(torch.device("cpu")) == 12.5
    assert calls == [("perf_counter",)]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_path_trains_with_data_on_the_device_in_bf16(tiny_split, tmp_path):
    cfg = TINY.model_copy(update={"device": "cuda"})
    spec = ModelParams(arch="cnn", image_size=48, options={"widths": [8, 16]})
    result = train_model(TrainJob("cnn", spec, cfg, 0, tiny_split), tmp_path / "cnn.pt")
    assert result.history[-1].images_per_second > 0
    images, _ = to_device(np.zeros((4, 48, 48), np.uint8), np.zeros(4, np.int64), torch.device("cuda"))
    assert images.is_cuda and images.dtype == torch.uint8


def test_a_train_job_is_built_once_from_params_and_names_an_unknown_model():
    job = TrainJob.from_params(REPO_PARAMS, "cnn", 42, "outputs/split")
    assert job == TrainJob("cnn", REPO_PARAMS.models["cnn"], REPO_PARAMS.train_config("cnn"), 42, Path("outputs/split"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.seed = 7
    with pytest.raises(FerError, match="params.yaml: no model 'nope' in models"):
        TrainJob.from_params(REPO_PARAMS, "nope", 42, "outputs/split")
