import json

import numpy as np
import pytest
import torch
from conftest import REPO_PARAMS
from sklearn.metrics import f1_score

from fer.core.emotions import EMOTIONS
from fer.core.labels import FER2013
from fer.data.sources.synthetic import generate
from fer.evaluate.evaluation import evaluate_checkpoint, expected_calibration_error, write_evaluation
from fer.runtime.checkpoint import load_checkpoint
from fer.runtime.inference import predict_probabilities

DISGUST = EMOTIONS.index("disgust")
PARAMS = REPO_PARAMS.evaluate.model_copy(update={"tta_flip": False, "calibration_bins": 10, "latency_images": 4})


@pytest.fixture(scope="module")
def test_split():
    """A test split with no disgust image, so that an absent class must still be reported."""
    ds = generate(80, 48, 3, photo=False)
    labels = np.asarray(ds.labels, dtype=np.int64)
    keep = labels != DISGUST
    return np.stack(ds.images)[keep], labels[keep]


@pytest.fixture(scope="module")
def evaluated(tiny_checkpoint, test_split):
    return evaluate_checkpoint(tiny_checkpoint, *test_split, FER2013, PARAMS)


def test_accuracy_and_macro_f1_match_the_predictions(evaluated, test_split):
    result, predictions = evaluated
    labels = test_split[1]
    assert result["model"] == "mlp" and result["arch"] == "mlp"
    assert predictions.shape == labels.shape
    assert result["accuracy"] == round(float(np.mean(predictions == labels)), 4)
    assert result["macro_f1"] == round(f1_score(labels, predictions, average="macro", zero_division=0), 4)


def test_per_class_lists_every_class_and_supports_count_the_images(evaluated, test_split):
    result, _ = evaluated
    labels = test_split[1]
    assert list(result["per_class"]) == list(EMOTIONS)
    supports = [row["support"] for row in result["per_class"].values()]
    assert supports == np.bincount(labels, minlength=len(EMOTIONS)).tolist()
    assert sum(supports) == len(labels) and result["per_class"]["disgust"]["support"] == 0
    assert result["per_class"]["disgust"]["recall"] == 0.0


def test_confusion_rows_sum_to_supports_and_normalised_rows_to_one(evaluated):
    result, _ = evaluated
    confusion = np.array(result["confusion"])
    normalized = np.array(result["confusion_normalized"])
    supports = np.array([row["support"] for row in result["per_class"].values()])
    assert confusion.shape == normalized.shape == (len(EMOTIONS), len(EMOTIONS))
    assert confusion.sum(1).tolist() == supports.tolist()
    assert np.allclose(normalized.sum(1), np.where(supports > 0, 1.0, 0.0), atol=1e-3)


def test_model_size_and_speed(evaluated, tiny_checkpoint):
    result, _ = evaluated
    model, _ = load_checkpoint(tiny_checkpoint)
    assert result["params"] == sum(p.numel() for p in model.parameters())
    assert result["size_bytes"] == tiny_checkpoint.stat().st_size
    assert result["latency_ms"] > 0
    assert 0 <= result["ece"] <= 1


def _probabilities(confidence: float, n: int, n_classes: int = len(EMOTIONS)) -> np.ndarray:
    """n rows that give class 0 probability `confidence` and share the rest among the other classes."""
    rows = np.full((n, n_classes), (1 - confidence) / (n_classes - 1))
    rows[:, 0] = confidence
    return rows


def test_ece_is_zero_when_confidence_matches_accuracy():
    labels = np.array([0] * 80 + [1] * 20)  # class 0 predicted with 0.8 confidence, right 80% of the time
    assert expected_calibration_error(_probabilities(0.8, 100), labels, n_bins=15) == pytest.approx(0, abs=1e-9)


def test_ece_is_large_for_an_over_confident_model():
    labels = np.array([0] * 50 + [1] * 50)  # 0.99 confident, right half the time
    assert expected_calibration_error(_probabilities(0.99, 100), labels, n_bins=15) == pytest.approx(0.49)


def test_ece_weighs_each_bin_by_its_size():
    # Calibrated within each bin, over-confident by 0.5 in a bin holding a quarter of the images.
    probabilities = np.concatenate([_probabilities(0.6, 30), _probabilities(0.6, 20), _probabilities(1.0, 50)])
    labels = np.array([0] * 30 + [1] * 20 + [0] * 25 + [1] * 25)
    assert expected_calibration_error(probabilities, labels, n_bins=10) == pytest.approx(0.25)


def test_flip_tta_averages_each_image_with_its_mirror(tiny_checkpoint, test_split):
    model, record = load_checkpoint(tiny_checkpoint)
    images = torch.from_numpy(test_split[0])
    with_tta = predict_probabilities(model, images, record.input_spec, record.label_set.head, tta_flip=True)
    plain = predict_probabilities(model, images, record.input_spec, record.label_set.head)
    mirrored = predict_probabilities(model, images.flip(-1), record.input_spec, record.label_set.head)
    assert np.allclose(with_tta, (plain + mirrored) / 2, atol=1e-6)
    assert np.allclose(with_tta.sum(1), 1, atol=1e-5)


def test_flip_tta_changes_nothing_on_mirror_symmetric_images(tiny_checkpoint, test_split):
    images, labels = test_split
    symmetric = images.copy()
    symmetric[:, :, 24:] = images[:, :, :24][:, :, ::-1]
    plain, plain_predictions = evaluate_checkpoint(tiny_checkpoint, symmetric, labels, FER2013, PARAMS)
    tta, tta_predictions = evaluate_checkpoint(tiny_checkpoint, symmetric, labels, FER2013, PARAMS.model_copy(
        update={"tta_flip": True}))
    assert np.array_equal(plain_predictions, tta_predictions)
    for key in ("accuracy", "macro_f1", "ece", "per_class", "confusion"):
        assert plain[key] == tta[key]


def test_write_evaluation_writes_metrics_and_every_confusion_cell(evaluated, test_split, tmp_path):
    result, predictions = evaluated
    labels = test_split[1]
    write_evaluation(result, tmp_path / "metrics" / "mlp.json", tmp_path / "plots" / "mlp.json")
    metrics = json.loads((tmp_path / "metrics" / "mlp.json").read_text())
    assert metrics["accuracy"] == result["accuracy"] and metrics["per_class"] == result["per_class"]
    assert "confusion" not in metrics
    cells = json.loads((tmp_path / "plots" / "mlp.json").read_text())
    # every class on both axes, even disgust, which is neither in the split nor (so) predicted much
    assert {(c["actual"], c["predicted"]) for c in cells} == {(a, p) for a in EMOTIONS for p in EMOTIONS}
    for cell in cells:
        a, p = EMOTIONS.index(cell["actual"]), EMOTIONS.index(cell["predicted"])
        assert cell["count"] == int(((labels == a) & (predictions == p)).sum())
