import numpy as np
import pytest
from conftest import train_params

from fer.cli import main
from fer.core.params import AugmentParams, ModelParams
from fer.models.input_spec import InputSpec
from fer.tools.bench import PerImageDataset, bench_model, markdown


def test_bench_measures_both_loops_and_prediction():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (256, 48, 48), dtype=np.uint8)
    labels = np.arange(256) % 7
    cfg = train_params(batch_size=64)
    row = bench_model(
        "mlp", ModelParams(arch="mlp", options={"hidden": [16]}), cfg, images, labels, 128, repeats=3, min_seconds=0.05
    )
    assert row.images_per_measurement >= 128 and row.images_per_measurement % 64 == 0
    for spread in (row.ours, row.baseline, row.speedup):
        assert 0 < spread.low <= spread.median <= spread.high
    assert row.latency_ms > 0 and row.predict_images_per_s > 0
    # the speed-up is taken pair by pair, so it lies within the ratios the extremes allow
    assert row.ours.low / row.baseline.high <= row.speedup.median <= row.ours.high / row.baseline.low
    assert "| mlp | cpu | 64 |" in markdown([row])


def test_baseline_dataset_yields_normalised_tensors_of_the_model_size():
    images = np.full((4, 48, 48), 255, np.uint8)
    no_erasing = train_params(augment=AugmentParams(flip=True, degrees=10, translate=0.08, scale=0.1, erasing=0))
    ds = PerImageDataset(images, np.zeros(4), InputSpec(64, 0.5, 0.25), no_erasing)
    x, y = ds[0]
    assert x.shape == (1, 64, 64) and y == 0
    assert x.max().item() == pytest.approx(2.0)


def test_bench_rejects_unknown_models(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--models", "alexnet"])
    assert exit_info.value.code == 2
    assert "--models: unknown 'alexnet'" in capsys.readouterr().err
