import json

import numpy as np
import pytest
import torch
from conftest import REPO_PARAMS
from sklearn.metrics import f1_score

from fer.core.emotions import EMOTIONS
from fer.core.labels import FER2013, LabelSet
from fer.data.sources.synthetic import generate
from fer.evaluate.evaluation import Evaluated, evaluate_checkpoint, expected_calibration_error, write_evaluation
from fer.evaluate.intervals import score_intervals
from fer.evaluate.records import read_evaluation, read_predictions
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
    evaluated, predictions = evaluate_checkpoint(
        tiny_checkpoint, *test_split, FER2013, PARAMS, predictions_path="unused.json"
    )
    return evaluated.record, predictions, evaluated


def test_accuracy_and_macro_f1_match_the_predictions(evaluated, test_split):
    result, predictions, _ = evaluated
    labels = test_split[1]
    assert result.model == "mlp" and result.arch == "mlp"
    assert predictions.shape == labels.shape
    assert result.accuracy == round(float(np.mean(predictions == labels)), 4)
    assert result.macro_f1 == round(f1_score(labels, predictions, average="macro", zero_division=0), 4)


def test_per_class_lists_every_class_and_supports_count_the_images(evaluated, test_split):
    result, _, _ = evaluated
    labels = test_split[1]
    assert list(result.per_class) == list(EMOTIONS)
    supports = [row["support"] for row in result.per_class.values()]
    assert supports == np.bincount(labels, minlength=len(EMOTIONS)).tolist()
    assert sum(supports) == len(labels) and result.per_class["disgust"]["support"] == 0
    assert result.per_class["disgust"]["recall"] == 0.0


def test_confusion_rows_sum_to_supports_and_normalised_rows_to_one(evaluated, test_split):
    result, predictions, scored = evaluated
    confusion = np.array(scored.confusion)
    one_hot = np.eye(len(EMOTIONS))[predictions]
    normalized = np.array(FER2013.head.test_metrics(test_split[1], one_hot, None)["confusion_normalized"])
    supports = np.array([row["support"] for row in result.per_class.values()])
    assert confusion.shape == normalized.shape == (len(EMOTIONS), len(EMOTIONS))
    assert confusion.sum(1).tolist() == supports.tolist()
    assert np.allclose(normalized.sum(1), np.where(supports > 0, 1.0, 0.0), atol=1e-3)


def test_model_size_and_speed(evaluated, tiny_checkpoint):
    result, _, _ = evaluated
    model, _ = load_checkpoint(tiny_checkpoint)
    assert result.params == sum(p.numel() for p in model.parameters())
    assert result.size_bytes == tiny_checkpoint.stat().st_size
    assert result.latency_ms > 0
    assert 0 <= result.ece <= 1


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
    plain, plain_predictions = evaluate_checkpoint(
        tiny_checkpoint, symmetric, labels, FER2013, PARAMS, predictions_path="plain.json"
    )
    tta, tta_predictions = evaluate_checkpoint(
        tiny_checkpoint,
        symmetric,
        labels,
        FER2013,
        PARAMS.model_copy(update={"tta_flip": True}),
        predictions_path="tta.json",
    )
    assert np.array_equal(plain_predictions, tta_predictions)
    assert plain.confusion == tta.confusion
    for key in ("accuracy", "macro_f1", "ece", "per_class"):
        assert getattr(plain.record, key) == getattr(tta.record, key)


def test_write_evaluation_writes_metrics_per_image_predictions_and_every_confusion_cell(
    evaluated, test_split, tmp_path
):
    _, predictions, scored = evaluated
    labels = test_split[1]
    per_image = tmp_path / "plots" / "predictions" / "mlp.json"
    scored = Evaluated(
        scored.record.model_copy(update={"predictions": str(per_image)}), scored.confusion, scored.per_image
    )
    write_evaluation(scored, tmp_path / "metrics" / "mlp.json", tmp_path / "plots" / "mlp.json")
    metrics = read_evaluation(tmp_path / "metrics" / "mlp.json")
    assert metrics == scored.record and "confusion" not in json.loads((tmp_path / "metrics" / "mlp.json").read_text())
    cells = json.loads((tmp_path / "plots" / "mlp.json").read_text())
    # every class on both axes, even disgust, which is neither in the split nor (so) predicted much
    assert {(c["actual"], c["predicted"]) for c in cells} == {(a, p) for a in EMOTIONS for p in EMOTIONS}
    for cell in cells:
        a, p = EMOTIONS.index(cell["actual"]), EMOTIONS.index(cell["predicted"])
        assert cell["count"] == int(((labels == a) & (predictions == p)).sum())
    # one row per test image, in the split's order, as DVC's confusion template reads them
    rows = read_predictions(per_image)
    assert [(r.image, r.actual, r.predicted) for r in rows] == [
        (i, EMOTIONS[a], EMOTIONS[p]) for i, (a, p) in enumerate(zip(labels, predictions))
    ]
    assert [r.correct for r in rows] == (labels == predictions).tolist()
    assert all(0 <= r.p_true <= r.confidence <= 1 for r in rows)
    assert np.mean([r.correct for r in rows]) == pytest.approx(metrics.accuracy, abs=1e-4)


def test_the_bootstrap_intervals_hold_the_scores(evaluated):
    result, _, _ = evaluated
    assert result.accuracy_ci_low < result.accuracy < result.accuracy_ci_high
    assert result.macro_f1_ci_low < result.macro_f1 < result.macro_f1_ci_high
    assert result.test_images == 79


def test_the_bootstrap_scores_are_sklearns(test_split):
    """The heads recompute accuracy and macro-F1 in numpy for the bootstrap; on the full data they are sklearn's
    (attributes: the mean F1 over the attributes the labels show, as test_metrics counts it)."""
    labels = test_split[1]
    rng = np.random.default_rng(0)
    noisy = np.where(rng.random(len(labels)) < 0.5, labels, rng.integers(0, 7, len(labels)))
    for guess in (labels, (labels + 1) % 7, noisy):
        accuracy, macro_f1 = FER2013.head.resampled_scores(labels, guess)
        assert accuracy == pytest.approx(np.mean(labels == guess))
        assert macro_f1 == pytest.approx(f1_score(labels, guess, average="macro", zero_division=0))
    truth, said = rng.integers(0, 2, (50, 3)), rng.integers(0, 2, (50, 3))
    truth[:, 2] = 0  # an attribute nobody shows
    head = LabelSet("attributes", ("a", "b", "c")).head
    accuracy, mean_f1 = head.resampled_scores(truth, said)
    assert accuracy == pytest.approx(np.mean(truth == said))
    assert mean_f1 == pytest.approx(np.mean([f1_score(truth[:, k], said[:, k], zero_division=0) for k in range(2)]))
    assert mean_f1 == pytest.approx(head.test_metrics(truth, said.astype(float), truth)["macro_f1"], abs=1e-4)


def test_a_wider_test_set_gives_a_narrower_interval():
    rng = np.random.default_rng(1)
    widths = []
    for n in (100, 1600):
        truth = rng.integers(0, 7, n)
        guess = np.where(rng.random(n) < 0.5, truth, (truth + 1) % 7)
        accuracy, _ = score_intervals(truth, guess, FER2013.head, 0.95, 2000)
        widths.append(accuracy.high - accuracy.low)
    # the binomial standard error shrinks as 1/sqrt(n): 4 times narrower, about 0.2 and 0.05 at p = 0.5
    assert widths[0] == pytest.approx(0.196, abs=0.03) and widths[1] == pytest.approx(0.049, abs=0.008)
