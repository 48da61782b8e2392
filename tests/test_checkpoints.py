"""Bad and corrupted checkpoints are refused in one line by `fer predict`, `fer serve` and evaluation."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import REPO, REPO_PARAMS, with_weights
from PIL import Image
from skimage import data as skdata

from fer.cli import main
from fer.core.errors import FerError, one_line
from fer.core.labels import FER2013
from fer.data.datasets import load_split
from fer.evaluate.champion import promote_champion
from fer.evaluate.evaluation import evaluate_checkpoint
from fer.evaluate.leaderboard import build_leaderboard
from fer.runtime.checkpoint import load_checkpoint, read_checkpoint

BAD_KINDS = (
    "random_bytes",
    "text",
    "empty",
    "truncated",
    "bare_state_dict",
    "wrong_shapes",
    "wrong_classes",
    "malicious_pickle",
)


class _RunsCode:
    """Unpickled unsafely, this would create `marker`."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _write_bad_checkpoint(kind: str, good_path, path) -> None:
    good = good_path.read_bytes()
    content = torch.load(good_path, weights_only=True)
    if kind == "random_bytes":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif kind == "text":
        path.write_text("this is not a checkpoint\n")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif kind == "bare_state_dict":
        torch.save(content["state_dict"], path)
    elif kind == "wrong_shapes":  # the record says a wider hidden layer than the weights have
        torch.save({**content, "record": {**content["record"], "options": {"hidden": [64]}}}, path)
    elif kind == "wrong_classes":  # the record names 5 classes, the weights have 7 outputs
        torch.save({**content, "record": {**content["record"], "classes": ["a", "b", "c", "d", "e"]}}, path)
    else:
        torch.save({"state_dict": _RunsCode(path.with_suffix(".pwned")), "record": {}}, path)


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    path = tmp_path_factory.mktemp("photo") / "astronaut.jpg"
    Image.fromarray(skdata.astronaut()).save(path)
    return path


def _assert_one_line_naming(message: str, path) -> None:
    assert len(message.strip().splitlines()) == 1, message
    assert str(path) in message and "Traceback" not in message
    assert "weights_only=False" not in message  # would run the file's code


def _predict_refusal(model, champion_record, photo, capsys) -> str:
    """`fer predict --json` on model: it must exit 2 printing nothing, with one stderr line naming model."""
    with pytest.raises(SystemExit) as exit_:
        main(["predict", "--json", "--model", str(model), "--champion-record", str(champion_record), str(photo)])
    out, err = capsys.readouterr()
    assert exit_.value.code == 2 and out == ""
    _assert_one_line_naming(err, model)
    return err


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_checkpoints_are_one_line_in_predict_and_evaluate(
    kind, tiny_checkpoint, tiny_split, photo, tmp_path, capsys
):
    bad = tmp_path / f"{kind}.pt"
    _write_bad_checkpoint(kind, tiny_checkpoint, bad)
    _predict_refusal(bad, tmp_path / "none.json", photo, capsys)

    images, labels = load_split(tiny_split, "val")
    with pytest.raises(FerError) as refused:
        evaluate_checkpoint(bad, images, labels, FER2013, REPO_PARAMS.evaluate, predictions_path=tmp_path / "p.json")
    _assert_one_line_naming(one_line(refused.value), bad)
    assert not bad.with_suffix(".pwned").exists()


def _flip_a_weight_to_nan(path) -> None:
    """Corrupt the bytes of one stored weight in place, as bit rot in a DVC cache object would."""
    weight = next(v for k, v in torch.load(path, weights_only=True)["state_dict"].items() if k.endswith("weight"))
    data = bytearray(path.read_bytes())
    start = data.find(weight.numpy().tobytes()[:64])
    assert start > 0
    data[start : start + 4] = np.float32("nan").tobytes()
    path.write_bytes(bytes(data))


@pytest.fixture
def corrupted_champion(tiny_checkpoint, tiny_split, tmp_path):
    """The tiny model promoted to champion (its sha256 recorded), then corrupted on disk."""
    images, labels = load_split(tiny_split, "val")
    scored, _ = evaluate_checkpoint(
        tiny_checkpoint, images, labels, FER2013, REPO_PARAMS.evaluate, predictions_path=tmp_path / "predictions.json"
    )
    evaluation = scored.record
    champion, record = tmp_path / "champion.pt", tmp_path / "champion.json"
    promote_champion(build_leaderboard([evaluation], REPO_PARAMS.compare), [evaluation], champion, record)
    _flip_a_weight_to_nan(champion)
    return champion, record


def test_a_corrupted_champion_is_refused_by_predict_against_its_recorded_sha256(corrupted_champion, photo, capsys):
    champion, record = corrupted_champion
    err = _predict_refusal(champion, record, photo, capsys)
    assert "sha256" in err and "differs" in err


def test_a_corrupted_champion_is_not_served(corrupted_champion, tmp_path):
    champion, record = corrupted_champion
    served = subprocess.run(
        [
            sys.executable,
            "-m",
            "fer.cli",
            "serve",
            "--port",
            "0",
            "--model",
            str(champion),
            "--champion-record",
            str(record),
            "--log",
            "",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert served.returncode == 2
    _assert_one_line_naming(served.stderr, champion)


def test_nan_weights_are_refused_even_without_a_recorded_hash(corrupted_champion, tmp_path, photo, capsys):
    champion, _ = corrupted_champion
    assert "NaN or inf" in _predict_refusal(champion, tmp_path / "none.json", photo, capsys)


HUGE = 2.0**100  # finite in float32 (up to ~2^128), but the product of two is not


def test_finite_weights_whose_outputs_overflow_are_refused_at_load(tiny_checkpoint, photo, tmp_path, capsys):
    # Every hidden unit is ~2^100 after its BatchNorm, and each output weighs them by 2^100: logits of inf.
    overflowing = with_weights(
        tiny_checkpoint,
        tmp_path / "overflowing.pt",
        {"2.bias": torch.full((32,), HUGE), "5.weight": torch.full((7, 32), HUGE)},
    )
    state, _ = read_checkpoint(overflowing)
    assert all(value.isfinite().all() for value in state.values() if value.is_floating_point())
    with pytest.raises(FerError, match="outputs are NaN or inf") as refused:
        load_checkpoint(overflowing)
    _assert_one_line_naming(one_line(refused.value), overflowing)
    _predict_refusal(overflowing, tmp_path / "none.json", photo, capsys)


def test_predict_json_is_strict_json(tiny_checkpoint, photo, capsys):
    main(["predict", "--json", "--model", str(tiny_checkpoint), str(photo)])
    out = capsys.readouterr().out
    assert "NaN" not in out
    assert json.loads(out, parse_constant=lambda name: pytest.fail(f"non-standard JSON constant {name}"))
