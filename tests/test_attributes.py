"""The attributes task below the pipeline: labels on disk, the multi-label loss and accuracy, metrics, ranking."""

import numpy as np
import pandas as pd
import pytest
from conftest import REPO_PARAMS, evaluation_record, train_params
from sklearn.metrics import average_precision_score, f1_score

from fer.core.errors import FerError
from fer.core.labels import FER2013, LabelSet
from fer.core.params import ModelParams
from fer.data.classes import check_task, select_classes
from fer.data.datasets import load_split, save_images, split_label_set
from fer.data.sources.synthetic import generate_attributes
from fer.evaluate.evaluation import confusion_cells, evaluate_checkpoint
from fer.evaluate.leaderboard import build_leaderboard, markdown_table
from fer.serve.predict import FacePrediction
from fer.train.job import TrainJob
from fer.train.trainer import train_model

ATTRIBUTES = LabelSet("attributes", ("Bright_Top", "Bright_Left"))


def _halves(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Attribute 0: the top half is bright; attribute 1: the left half is; both drawn independently."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, (n, 2)).astype(np.int8)
    images = rng.integers(40, 80, (n, 32, 32))
    images[labels[:, 0] == 1, :16, :] += 120
    images[labels[:, 1] == 1, :, :16] += 60
    return images.clip(0, 255).astype(np.uint8), labels


@pytest.fixture(scope="module")
def attribute_split(tmp_path_factory):
    root = tmp_path_factory.mktemp("attributes") / "split"
    for name, n, seed in (("train", 256, 0), ("val", 64, 1), ("test", 64, 2)):
        images, labels = _halves(n, seed)
        save_images(root / name, images, pd.DataFrame(ATTRIBUTES.columns(labels)), ATTRIBUTES)
    return root


@pytest.fixture(scope="module")
def attribute_checkpoint(attribute_split):
    path = attribute_split.parent / "cnn.pt"
    spec = ModelParams(arch="cnn", image_size=32, options={"widths": [8, 16]})
    cfg = train_params(epochs=6, batch_size=32, lr=0.01, label_smoothing=0.0)
    result = train_model(TrainJob("cnn", spec, cfg, seed=0, split_dir=attribute_split), path)
    return path, result


def test_attribute_labels_round_trip_through_a_split_folder(attribute_split):
    _, labels = load_split(attribute_split, "val")
    assert split_label_set(attribute_split) == ATTRIBUTES
    assert labels.shape == (64, 2) and np.array_equal(labels, _halves(64, 1)[1])


def test_a_sigmoid_head_learns_two_attributes_at_once(attribute_checkpoint):
    _, result = attribute_checkpoint
    assert result.best_val_acc > 0.9  # the mean over both attributes; the majority gets about 0.5


def test_evaluation_reports_per_attribute_metrics_and_the_majority_baseline(attribute_checkpoint, attribute_split):
    images, labels = load_split(attribute_split, "test")
    _, train_labels = load_split(attribute_split, "train")
    scored, predictions = evaluate_checkpoint(
        attribute_checkpoint[0],
        images,
        labels,
        ATTRIBUTES,
        REPO_PARAMS.evaluate,
        predictions_path="p.json",
        train_labels=train_labels,
    )
    result = scored.record
    assert result.task == "attributes" and predictions.shape == labels.shape
    assert list(result.per_class) == list(ATTRIBUTES.classes)
    assert result.accuracy == pytest.approx(np.mean(predictions == labels), abs=1e-4)
    assert result.accuracy > result.majority_accuracy + 0.3
    assert result.accuracy_ci_low <= result.accuracy <= result.accuracy_ci_high
    # per image and attribute: "<attribute>: yes|no" against yes|no, as the attribute confusion plots read them
    rows = scored.per_image
    assert len(rows) == labels.size and rows[1].image == 0 and rows[1].actual.startswith(f"{ATTRIBUTES.classes[1]}: ")
    assert [row.correct for row in rows] == (predictions == labels).reshape(-1).tolist()
    assert all(row.predicted in ("yes", "no") and 0 <= row.p_true <= 1 for row in rows)
    with pytest.raises(FerError, match=r"for the attributes task \(Bright_Top, Bright_Left\), but the split.s expr"):
        evaluate_checkpoint(
            attribute_checkpoint[0], images, labels, FER2013, REPO_PARAMS.evaluate, predictions_path="p.json"
        )


def test_attribute_metrics_match_sklearn_on_known_values():
    labels = np.array([[1, 0], [1, 1], [0, 0], [0, 0]], np.int8)
    probabilities = np.array([[0.9, 0.2], [0.4, 0.8], [0.6, 0.1], [0.1, 0.7]])
    # a train split whose majorities are "a" shown and "b" not
    result = LabelSet("attributes", ("a", "b")).head.test_metrics(labels, probabilities, np.array([[1, 0]], np.int8))
    a, b = result["per_class"]["a"], result["per_class"]["b"]
    assert (a["accuracy"], b["accuracy"]) == (0.5, 0.75)
    assert result["accuracy"] == 0.625
    assert a["f1"] == round(f1_score(labels[:, 0], probabilities[:, 0] >= 0.5), 4)
    assert a["average_precision"] == round(average_precision_score(labels[:, 0], probabilities[:, 0]), 4)
    assert (a["majority_accuracy"], b["majority_accuracy"]) == (0.5, 0.75) and result["majority_accuracy"] == 0.625
    # rows "a: yes", "a: no", "b: yes", "b: no" against predicted yes, no
    assert result["confusion"] == [[1, 1], [1, 1], [1, 0], [1, 2]]
    cells = confusion_cells(result["confusion"], LabelSet("attributes", ("a", "b")))
    assert {(c["actual"], c["predicted"]): c["count"] for c in cells}[("b: no", "yes")] == 1


def test_an_attribute_no_test_face_shows_has_no_average_precision():
    head = LabelSet("attributes", ("a",)).head
    result = head.test_metrics(np.zeros((3, 1), np.int8), np.array([[0.1], [0.2], [0.7]]), np.zeros((1, 1), np.int8))
    assert result["per_class"]["a"]["average_precision"] is None and result["mean_average_precision"] is None


def test_the_attributes_leaderboard_states_the_majority_baseline():
    runs = [
        evaluation_record(name, acc, f1, task="attributes", majority_accuracy=0.8)
        for name, acc, f1 in (("cnn", 0.9, 0.7), ("mlp", 0.85, 0.6))
    ]
    board = build_leaderboard(runs, REPO_PARAMS.compare)
    assert board["task"] == "attributes" and board["majority_accuracy"] == 0.8 and board["champion"] == "cnn"
    table = markdown_table(board)
    assert "majority baseline" in table and "0.8000" in table and "| Mean accuracy |" in table
    with pytest.raises(FerError, match="several tasks"):
        build_leaderboard([*runs, runs[0].model_copy(update={"model": "x", "task": "expression"})], REPO_PARAMS.compare)


def test_a_face_shows_every_attribute_at_least_even_odds():
    head = LabelSet("attributes", ("Smiling", "Bangs", "Eyeglasses")).head
    face = FacePrediction(
        box=(0, 0, 10, 10),
        detector_score=1.0,
        head=head,
        probabilities={"Smiling": 0.9, "Bangs": 0.2, "Eyeglasses": 0.6},
    )
    assert head.present(face.probabilities) == ["Smiling", "Eyeglasses"] and face.label == "Smiling, Eyeglasses"
    assert face.as_dict()["attributes"] == ["Smiling", "Eyeglasses"] and "emotion" not in face.as_dict()
    assert face.log_row()["confidence"] == pytest.approx((0.9 + 0.8 + 0.6) / 3)


def test_data_classes_picks_attributes_in_order_and_the_task_must_match_the_data():
    faces = generate_attributes(60, 48, 0)
    picked = select_classes(faces, ["Smiling", "Bangs"])
    assert picked.label_set == LabelSet("attributes", ("Smiling", "Bangs")) and len(picked) == 60
    assert np.array_equal(picked.labels, faces.labels[:, [4, 0]])
    with pytest.raises(FerError, match="data.classes: the attributes task takes a list"):
        select_classes(faces, {"Smiling": "smile"})
    with pytest.raises(FerError, match="data.classes: 'Wavy_Hair' is not a class of the data"):
        select_classes(faces, ["Wavy_Hair"])
    with pytest.raises(FerError, match="the data holds attributes labels .* but task is expression; set task: "):
        check_task(faces, "expression", "folder")
