"""One place per task: a task's head (fer.core.tasks) is the only code that knows what its labels mean.

A scan of the code shows nothing else branches on the task, and a toy third task registered in HEADS alone is
trained, evaluated and described by the unchanged loop, evaluation and serving code.
"""

import ast

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import REPO, REPO_PARAMS, train_params

from fer.core.errors import FerError
from fer.core.labels import FER2013, LabelSet
from fer.core.params import ModelParams
from fer.core.tasks import HEADS
from fer.core.tasks.head import TaskHead, round_metric
from fer.data.datasets import load_split, save_images
from fer.data.sources.synthetic import generate
from fer.evaluate.evaluation import evaluate_checkpoint
from fer.runtime.checkpoint import load_checkpoint
from fer.runtime.inference import predict_probabilities
from fer.serve.predict import FacePrediction
from fer.train.job import TrainJob
from fer.train.trainer import train_model

# Code that may name a task: the heads, and what a data source reads or draws for each task (its options and
# their validation included), since a new task needs new data anyway.
MAY_NAME_A_TASK = ("fer/core/tasks/", "fer/data/sources/", "fer/core/params.py", "fer/core/preflight.py")
TASK_BOOLEANS = ("multi_label", "PRESENT_FROM")


def _task_branches(tree: ast.AST) -> list[str]:
    """Comparisons with a task's name, and any use of a task flag, as 'line: code'."""

    def names_a_task(node: ast.AST) -> bool:
        return isinstance(node, ast.Compare) and any(
            isinstance(side, ast.Constant) and side.value in HEADS for side in (node.left, *node.comparators)
        )

    def uses_a_flag(node: ast.AST) -> bool:
        return bool({getattr(node, key, None) for key in ("id", "attr", "arg")} & set(TASK_BOOLEANS))

    return [f"{node.lineno}: {ast.unparse(node)}" for node in ast.walk(tree) if names_a_task(node) or uses_a_flag(node)]


def test_nothing_outside_the_task_heads_branches_on_the_task():
    offending = {}
    for file in sorted(file for folder in ("fer", "stages", "scripts") for file in (REPO / folder).rglob("*.py")):
        where = str(file.relative_to(REPO))
        if not where.startswith(MAY_NAME_A_TASK):
            branches = _task_branches(ast.parse(file.read_text()))
            if branches:
                offending[where] = branches
    assert not offending, f"ask the label set's head instead: {offending}"


def test_the_scan_sees_a_branch_on_the_task():
    code = (
        "def f(label_set, task):\n    if label_set.multi_label:\n        return 1\n"
        "    return 2 if task == 'attributes' else 3\n"
    )
    assert len(_task_branches(ast.parse(code))) == 2


class Valence(TaskHead):
    """A toy third task: one value in [-1, 1] per face, right when within 0.25."""

    name = "valence"
    min_classes = 1

    def label_array(self, labels):
        return np.asarray(labels, np.float32).reshape(len(labels), 1)

    def column_names(self):
        return ["valence"]

    def columns(self, labels):
        return {"valence": self.label_array(labels)[:, 0]}

    def from_columns(self, manifest):
        return self.label_array(manifest["valence"].to_numpy())

    def per_class(self, labels):
        return np.array([len(labels)])

    def showing(self, labels):
        return np.ones((len(labels), 1), bool)

    def strata(self, labels):
        return None

    def unlearnable(self, labels):
        return []

    def renaming(self, declared, where):
        return {name: name for name in declared}

    def relabel(self, labels, renamed, classes):
        return labels, np.ones(len(labels), bool)

    def activation(self, logits):
        return logits.tanh()

    def loss(self, train_labels, label_smoothing, class_weights):
        return lambda logits, targets: torch.nn.functional.mse_loss(logits.tanh(), targets)

    def val_loss(self, logits, targets):
        return torch.nn.functional.mse_loss(logits.tanh(), targets)

    def hits(self, logits, labels):
        return ((logits.tanh() - labels).abs() < 0.25).float().mean(1)

    def decide(self, probabilities):
        return probabilities

    def test_metrics(self, labels, probabilities, train_labels):
        within = np.abs(probabilities - labels) < 0.25
        return {
            "accuracy": round_metric(within.mean()),
            "macro_f1": round_metric(within.mean()),
            "rmse": round_metric(np.sqrt(np.mean((probabilities - labels) ** 2))),
            "per_class": {},
            "confusion": [],
            "confusion_normalized": [],
        }

    def resampled_scores(self, labels, decisions):
        within = (np.abs(decisions - labels) < 0.25).mean((-2, -1))
        return np.stack([within, within])

    def per_image(self, labels, probabilities):
        return [
            {
                "image": i,
                "actual": f"{truth:+.2f}",
                "predicted": f"{guess:+.2f}",
                "correct": abs(guess - truth) < 0.25,
                "p_true": 1.0,
                "confidence": 1.0,
            }
            for i, (truth, guess) in enumerate(zip(labels[:, 0].tolist(), probabilities[:, 0].tolist()))
        ]

    def calibration(self, probabilities, labels):
        within = (np.abs(probabilities - labels) < 0.25)[:, 0]
        return np.stack([np.full(len(labels), 0.5)] * 2, 1), within.astype(np.int64)

    def confusion_axes(self):
        return [], []

    def headline(self, probabilities):
        return f"valence {probabilities['valence']:+.2f}"

    def confidence(self, probabilities):
        return 1.0

    def outcome(self, probabilities):
        return {"valence": probabilities["valence"]}


def test_a_third_task_registered_in_one_place_is_trained_evaluated_and_described(tmp_path, monkeypatch):
    monkeypatch.setitem(HEADS, Valence.name, Valence)
    valence = LabelSet("valence", ("valence",))
    split = tmp_path / "split"
    for name, n, seed in (("train", 96, 1), ("val", 48, 2), ("test", 48, 3)):
        faces = generate(n, 48, seed, photo=False)
        happy_or_sad = np.select([faces.labels == 3, faces.labels == 4], [0.8, -0.8], 0.0)  # a face's valence
        save_images(split / name, np.stack(faces.images), pd.DataFrame(valence.columns(happy_or_sad)), valence)

    spec = ModelParams(arch="mlp", image_size=48, options={"hidden": [16]})
    result = train_model(
        TrainJob("mlp", spec, train_params(epochs=2, batch_size=32), 0, split), tmp_path / "valence.pt"
    )
    model, record = load_checkpoint(tmp_path / "valence.pt")
    assert record.task == "valence" and isinstance(record.label_set.head, Valence)

    # the loop's val accuracy was the toy head's: predictions within 0.25
    val_images, val_labels = load_split(split, "val")
    predicted = predict_probabilities(model, torch.from_numpy(val_images), record.input_spec, record.label_set.head)
    assert predicted.shape == (48, 1) and np.abs(predicted).max() <= 1  # the toy head's tanh
    assert result.best_val_acc == pytest.approx(np.mean(np.abs(predicted - val_labels) < 0.25), abs=1e-6)

    images, labels = load_split(split, "test")
    evaluated, predictions = evaluate_checkpoint(
        tmp_path / "valence.pt", images, labels, valence, REPO_PARAMS.evaluate, predictions_path=tmp_path / "p.json"
    )
    evaluation = evaluated.record
    assert evaluation.task == "valence" and "rmse" in evaluation.model_extra
    assert evaluation.accuracy == round_metric(np.mean(np.abs(predictions - labels) < 0.25))
    assert len(evaluated.per_image) == len(labels) and evaluation.accuracy_ci_low <= evaluation.accuracy

    face = FacePrediction((0, 0, 48, 48), 1.0, {"valence": float(predictions[0, 0])}, record.label_set.head)
    assert face.as_dict()["valence"] == float(predictions[0, 0]) and face.label.startswith("valence ")
    with pytest.raises(FerError, match="a model for the valence task"):
        evaluate_checkpoint(
            tmp_path / "valence.pt", images, labels, FER2013, REPO_PARAMS.evaluate, predictions_path=tmp_path / "p.json"
        )


def test_a_label_set_of_an_unknown_task_is_one_line(tmp_path):
    (tmp_path / "labels.json").write_text('{"task": "valence", "classes": ["valence"]}')
    with pytest.raises(FerError, match=r"labels.json: task 'valence' is not one of expression, attributes"):
        LabelSet.load(tmp_path)
