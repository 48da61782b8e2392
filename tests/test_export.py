"""The export stage (the champion as ONNX and int8 ONNX, checked against PyTorch) and serving the export
without torch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import onnx
import pytest
import torch
import yaml
from conftest import REPO, REPO_PARAMS, train_params
from test_serving import _jpeg, _serving

from fer.cli import main
from fer.core.emotions import EMOTIONS
from fer.core.errors import FerError
from fer.core.labels import FER2013
from fer.core.params import ModelParams
from fer.core.storage import file_sha256, read_json
from fer.data.datasets import load_split
from fer.export.champion_export import export_champion
from fer.export.checks import accuracy_against, batching_changes
from fer.export.quantize import quantize_int8
from fer.runtime.checkpoint import CheckpointClassifier
from fer.runtime.onnx_model import CLASSES_KEY, INPUT_SPEC_KEY, OnnxClassifier
from fer.tools.bench_faces import grace_hopper
from fer.train.job import TrainJob
from fer.train.trainer import train_model

# Small enough for a test; the stage's own checks and thresholds are those of params.yaml.
QUICK = {"latency_repeats": 2, "latency_batch": 8, "calibration_images": 64}
SCORING = {
    "interval": REPO_PARAMS.evaluate.interval,
    "resamples": REPO_PARAMS.evaluate.bootstrap_resamples,
    "alpha": REPO_PARAMS.compare.alpha,
}

# Put on a child's PYTHONPATH, it makes `import torch` (and the torch-only detector package) fail there.
NO_TORCH = """
import importlib.abc, sys

class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision", "facenet_pytorch"):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")

sys.meta_path.insert(0, NoTorch())
"""


@pytest.fixture(scope="module")
def champion(tiny_split, tmp_path_factory):
    """A small cnn (a middle layer to quantise) trained one epoch, its record, and a split with a test part."""
    root = tmp_path_factory.mktemp("export")
    split = root / "split"
    split.mkdir()
    (split / "train").symlink_to(tiny_split / "train")
    (split / "test").symlink_to(tiny_split / "val")
    checkpoint = root / "champion.pt"
    spec = ModelParams(arch="cnn", image_size=48, options={"widths": [8, 16]})
    train_model(TrainJob("cnn", spec, train_params(epochs=12, batch_size=32), seed=7, split_dir=tiny_split), checkpoint)
    record = root / "champion.json"
    record.write_text(
        json.dumps(
            {
                "name": "cnn-seed7",
                "arch": "cnn",
                "seed": 7,
                "checkpoint": str(checkpoint),
                "sha256": file_sha256(checkpoint),
                "promoted_from": str(checkpoint),
                "rank_by": "accuracy",
                "test_metrics": {"accuracy": 0.5},
            }
        )
    )
    return checkpoint, record, split


@pytest.fixture(scope="module")
def exported(champion):
    checkpoint, record, split = champion
    out = checkpoint.parent
    # A one-epoch model's int8 labels may differ on a few test crops: the float export is held to the default.
    params = REPO_PARAMS.export.model_copy(update={**QUICK, "min_int8_agreement": 0.5})
    metrics = export_champion(
        checkpoint,
        record,
        split,
        out / "champion.onnx",
        out / "champion.int8.onnx",
        out / "export.json",
        params,
        seed=0,
        **SCORING,
    )
    return out, metrics


def test_the_onnx_export_answers_as_the_checkpoint_at_any_batch_size_and_names_its_classes(champion, exported):
    checkpoint, _, split = champion
    out, _ = exported
    crops, _ = load_split(split, "test")
    reference = CheckpointClassifier(checkpoint)
    exported_model = OnnxClassifier(out / "champion.onnx")
    for batch in (crops[:1], crops[:5]):
        np.testing.assert_allclose(exported_model.probabilities(batch), reference.probabilities(batch), atol=1e-4)
    assert exported_model.record == reference.record
    assert exported_model.exported_from == file_sha256(checkpoint)
    metadata = {
        p.key: json.loads(p.value)
        for p in onnx.load(str(out / "champion.onnx")).metadata_props
        if p.key in (CLASSES_KEY, INPUT_SPEC_KEY)
    }
    assert metadata[CLASSES_KEY] == list(EMOTIONS)
    assert metadata[INPUT_SPEC_KEY] == reference.record.input_spec.as_dict()
    with pytest.raises(FerError, match="takes uint8 crops of 48x48"):
        exported_model.probabilities(np.zeros((1, 32, 32), np.uint8))


def test_metrics_hold_each_formats_checks_size_and_latency(exported):
    out, metrics = exported
    assert read_json(out / "export.json") == metrics
    formats = metrics["formats"]
    assert set(formats) == {"torch", "onnx", "int8_static", "int8_dynamic"}
    assert formats["onnx"]["agreement"] == 1.0 and formats["onnx"]["max_probability_difference"] <= 1e-3
    assert formats["onnx"]["accuracy"] == formats["torch"]["accuracy"]
    assert formats["onnx"]["right_only_in_torch"] == formats["onnx"]["right_only_here"] == 0
    assert formats["onnx"]["vs_torch_p"] == 1.0 and formats["onnx"]["tied_with_torch"]
    assert formats["onnx"]["labels_changed_by_batching"] == formats["int8_static"]["labels_changed_by_batching"] == 0
    for name, measured in formats.items():
        assert measured["size_bytes"] > 0 and 0 <= measured["macro_f1"] <= 1
        for score in ("accuracy", "macro_f1"):
            assert measured[f"{score}_ci_low"] <= measured[score] <= measured[f"{score}_ci_high"], name
            assert measured[f"{score}_ci_high"] - measured[f"{score}_ci_low"] > 0.05, name  # 70 test crops
        assert measured["latency_ms"]["q25"] <= measured["latency_ms"]["median"] <= measured["latency_ms"]["q75"]
        assert measured["batch_latency_ms"]["median"] > 0, name
        if name.startswith("int8"):
            assert 0 <= measured["agreement"] <= 1 and measured["disagreeing_images"] >= 0
    assert metrics["test_images"] == 70 and metrics["int8_shipped"] == "static"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file() and "avx2" in cpuinfo.read_text().split():  # which kernels ran the timings (and trained)
        assert "avx2" in metrics["latency"]["cpu_features"]
    shipped = onnx.load(str(out / "champion.int8.onnx"))
    assert "DequantizeLinear" in {node.op_type for node in shipped.graph.node}  # the middle conv is int8
    assert OnnxClassifier(out / "champion.int8.onnx").record.name == "cnn"


def test_dynamic_int8_answers_depend_on_the_batch_and_the_check_counts_labels_that_change(champion, exported, tmp_path):
    _, _, split = champion
    out, _ = exported
    crops = load_split(split, "test")[0][:8]
    with_a_white_crop = np.concatenate([crops, np.full((1, *crops.shape[1:]), 255, np.uint8)])
    quantize_int8(out / "champion.onnx", tmp_path / "dynamic.onnx", "dynamic", None, per_channel=True)
    for path, depends in ((tmp_path / "dynamic.onnx", True), (out / "champion.int8.onnx", False)):
        model = OnnxClassifier(path)
        difference = np.abs(model.probabilities(with_a_white_crop)[:8] - model.probabilities(crops, batch_size=1))
        assert (difference.max() > 1e-5) == depends, path.name  # dynamic: ranges measured over the batch
    alone = np.eye(7)[[0, 1, 2]]
    assert batching_changes(alone, alone, FER2013) == {"labels_changed_by_batching": 0}
    assert batching_changes(alone[[0, 0, 2]], alone, FER2013) == {"labels_changed_by_batching": 1}


def test_an_exports_accuracy_is_tested_against_the_checkpoints_on_the_same_images():
    labels = np.zeros(40, int)
    right, wrong = np.eye(7)[0], np.eye(7)[1]
    reference = np.tile(right, (40, 1))
    lost = reference.copy()
    lost[:12] = wrong  # 12 images only PyTorch gets right: 2 * 0.5**12 by chance
    assert accuracy_against(reference, lost, labels, FER2013, alpha=0.05) == {
        "right_only_in_torch": 12,
        "right_only_here": 0,
        "vs_torch_p": 0.000488,
        "tied_with_torch": False,
    }
    swapped = lost.copy()
    swapped[3:12] = right
    reference_missing_two = reference.copy()
    reference_missing_two[20:22] = wrong
    tied = accuracy_against(reference_missing_two, swapped, labels, FER2013, alpha=0.05)
    assert (tied["right_only_in_torch"], tied["right_only_here"], tied["vs_torch_p"]) == (3, 2, 1.0)
    assert tied["tied_with_torch"]


def test_an_export_beyond_the_threshold_fails_in_one_line_and_replaces_nothing(champion, exported, tmp_path):
    checkpoint, record, split = champion
    onnx_path, int8_path, metrics = tmp_path / "champion.onnx", tmp_path / "champion.int8.onnx", tmp_path / "m.json"
    onnx_path.write_text("before")
    int8_path.write_text("before")
    # Activation ranges calibrated on a single crop clip the other crops' activations: some labels change.
    params = REPO_PARAMS.export.model_copy(update={**QUICK, "calibration_images": 1, "min_int8_agreement": 1.0})
    with pytest.raises(
        FerError,
        match=r"champion\.int8\.onnx: agrees with the PyTorch champion on \d\d\.\d\d% of the "
        r"test images \(\d+ differ\), under export\.min_int8_agreement 100\.00%$",
    ):
        export_champion(checkpoint, record, split, onnx_path, int8_path, metrics, params, seed=0, **SCORING)
    assert onnx_path.read_text() == int8_path.read_text() == "before"
    assert not metrics.exists() and sorted(p.name for p in tmp_path.iterdir()) == [
        "champion.int8.onnx",
        "champion.onnx",
    ]


def test_a_checkpoint_other_than_the_recorded_champion_is_refused(champion, tmp_path):
    checkpoint, good_record, split = champion
    record = tmp_path / "champion.json"
    record.write_text(json.dumps({**json.loads(good_record.read_text()), "sha256": "0" * 64}))
    with pytest.raises(FerError, match="differs from the 000000000000... recorded"):
        export_champion(
            checkpoint,
            record,
            split,
            tmp_path / "a.onnx",
            tmp_path / "b.onnx",
            tmp_path / "m.json",
            REPO_PARAMS.export,
            seed=0,
            **SCORING,
        )


def test_fer_serve_answers_predict_from_the_onnx_export_where_torch_cannot_be_imported(
    champion, exported, tmp_path, monkeypatch
):
    _, record, _ = champion
    out, _ = exported
    blocker = tmp_path / "site"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(NO_TORCH)
    params = REPO_PARAMS.model_dump(mode="json")
    params["align"]["method"] = "mtcnn-opencv"  # MTCNN's networks on OpenCV: facenet-pytorch's need torch
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    monkeypatch.setenv("PYTHONPATH", str(blocker))
    with _serving(out / "champion.onnx", params_file, tmp_path / "log.sqlite", record) as url:
        answer = httpx.post(
            f"{url}/predict", files={"file": ("grace.jpg", _jpeg(grace_hopper()), "image/jpeg")}, timeout=30
        )
        card = httpx.get(f"{url}/model").json()
    assert answer.status_code == 200, answer.text
    (face,) = answer.json()["faces"]
    assert list(face["probabilities"]) == list(EMOTIONS)
    assert sum(face["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    # The export of the champion shows the champion's record, though its own file has another hash.
    assert card["champion"] is True and card["exported_from"] == read_json(record)["sha256"] != card["sha256"]
    assert card["test_metrics"] == {"accuracy": 0.5}
    assert torch.__name__ == "torch"  # only the child lacked it


def test_without_torch_mtcnn_on_torch_is_refused_in_one_line_naming_the_detector_that_runs(exported, tmp_path):
    out, _ = exported
    blocker = tmp_path / "site"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(NO_TORCH)
    photo = tmp_path / "grace.jpg"
    photo.write_bytes(_jpeg(grace_hopper()))
    done = subprocess.run(
        [sys.executable, "-m", "fer.cli", "predict", str(photo), "--model", str(out / "champion.onnx")],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(blocker)},
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr
    (line,) = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert "align.method mtcnn" in line and "No module named 'facenet_pytorch'" in line and "mtcnn-opencv" in line


def test_fer_predict_gives_the_checkpoints_answer_from_the_onnx_export(champion, exported, tmp_path, capsys):
    checkpoint, record, _ = champion
    out, _ = exported
    photo = tmp_path / "grace.jpg"
    photo.write_bytes(_jpeg(grace_hopper()))
    answers = []
    for model in (checkpoint, out / "champion.onnx"):
        main(["predict", str(photo), "--json", "--model", str(model), "--champion-record", str(record)])
        answers.append(json.loads(capsys.readouterr().out))
    (from_checkpoint,), (from_onnx,) = (answer[0]["faces"] for answer in answers)
    assert from_onnx["box"] == from_checkpoint["box"] and from_onnx["label"] == from_checkpoint["label"]
    for name, p in from_checkpoint["probabilities"].items():
        assert from_onnx["probabilities"][name] == pytest.approx(p, abs=1e-4)
