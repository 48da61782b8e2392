"""DVC experiments on tiny configs, in a throwaway copy of the repository: seeds, and sweeps through the queue."""

import json
import statistics

import pytest
from conftest import PLAIN_ROW, TIE_KEYS
from test_pipeline_e2e import TINY, TINY_MODELS, UNTIL_COMPARE, _copy_repo, _make_repo, _repro, _run, _set_params

pytestmark = pytest.mark.e2e


def _leaderboard(repo) -> dict:
    return json.loads((repo / "metrics" / "leaderboard.json").read_text())


def _ok(result):
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_several_seeds_report_mean_and_std_and_one_seed_brings_the_plain_table_back(tiny_pipeline, tmp_path):
    # The reproduced TINY pipeline trained and tuned cnn with seed 42 already: two seeds more make three, and tune,
    # which reads the tuned model's params alone, is reused.
    repo = _copy_repo(tiny_pipeline, tmp_path)
    _set_params(repo, models={"cnn": TINY_MODELS["cnn"]}, seeds=[42, 1, 2])
    out = _repro(repo, UNTIL_COMPARE)
    assert "Running stage 'train@cnn-1'" in out and "Running stage 'train@cnn-42'" not in out  # 42 is reused
    assert "Running stage 'tune'" not in out
    runs = [json.loads((repo / "metrics" / "evaluate" / f"cnn-seed{seed}.json").read_text()) for seed in (42, 1, 2)]
    assert len({run["accuracy"] for run in runs} | {run["macro_f1"] for run in runs}) > 2  # the seeds differ
    board = _leaderboard(repo)
    assert set(board["models"]) == {"cnn", "tuned"}
    cnn = board["models"]["cnn"]
    assert cnn["seeds"] == 3
    for key in ("accuracy", "macro_f1"):
        assert cnn[key] == pytest.approx(statistics.fmean(run[key] for run in runs))
        assert cnn[f"{key}_std"] == pytest.approx(statistics.stdev(run[key] for run in runs))
    assert f"{cnn['accuracy']:.4f} ± {cnn['accuracy_std']:.4f}" in (repo / "leaderboard.md").read_text()

    out = _ok(_run(["dvc", "exp", "run", "-S", "seeds=[42]", UNTIL_COMPARE], repo))
    assert "Running stage 'train@" not in out and "Running stage 'compare'" in out  # seed 42 is reused
    board = _leaderboard(repo)
    assert set(board["models"]) == {"cnn", "tuned"}
    assert all(set(row) - TIE_KEYS == PLAIN_ROW for row in board["models"].values())
    assert board["models"]["cnn"]["accuracy"] == runs[0]["accuracy"]
    assert "±" not in (repo / "leaderboard.md").read_text()


def _experiments(shown: list) -> dict:
    """{experiment name: (its params.yaml, its leaderboard)} from `dvc exp show --json`."""
    found = {}
    for baseline in shown:
        for experiment in baseline.get("experiments") or []:
            for rev in experiment["revs"]:
                data = rev["data"]
                found[rev["name"]] = (
                    data["params"]["params.yaml"]["data"],
                    data["metrics"]["metrics/leaderboard.json"]["data"],
                )
    return found


def test_a_sweep_through_the_experiment_queue(tiny_pipeline, tmp_path):
    # The reproduced TINY pipeline is the baseline. The sweep is over the mlp's learning rate: the model that is
    # not tuned (model: cnn), so each experiment re-runs just train@mlp-42, its evaluation and compare.
    repo = _copy_repo(tiny_pipeline, tmp_path)
    # data/ is tracked by data.dvc as in the repository, so each experiment's copy of the repo has it too
    for cmd in (
        ["dvc", "add", "-q", "data"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-qm", "baseline"],
    ):
        _ok(_run(cmd, repo))

    # docs/tuning.md's sweep, on a grid of two learning rates: queued (`+`, as the tiny mlp has no lr of its own to
    # override), then run one at a time by `dvc exp run --run-all`, which waits for them. The queue's worker it
    # starts outlives it by DVC's idle timeout, holding the output it inherited: hence a log file.
    queued = _ok(_run(["dvc", "exp", "run", "--queue", "-S", "+models.mlp.lr=0.001,0.01", UNTIL_COMPARE], repo))
    assert queued.count("Queued experiment") == 2, queued
    ran = _run(["dvc", "exp", "run", "--run-all", "-j", "1"], repo, log=tmp_path / "run-all.log")
    status = _ok(_run(["dvc", "queue", "status"], repo))
    logs = [
        _run(["dvc", "queue", "logs", line.split()[1]], repo).stdout
        for line in status.splitlines()
        if line.endswith("Failed")
    ]
    assert ran.returncode == 0 and status.count("Success") == 2 and not logs, ran.stdout + status + "\n".join(logs)

    experiments = _experiments(json.loads(_ok(_run(["dvc", "exp", "show", "--json"], repo))))
    assert sorted(params["models"]["mlp"]["lr"] for params, _ in experiments.values()) == [0.001, 0.01]
    accuracies = [board["models"]["mlp"]["accuracy"] for _, board in experiments.values()]
    assert len(set(accuracies)) == 2  # each experiment trained its own model
    table = _ok(_run(["dvc", "exp", "show", "--md", "--only-changed"], repo))
    assert all(name in table for name in experiments)
    _ok(_run(["dvc", "queue", "stop"], repo))  # the idle worker


def test_the_attributes_task_on_a_celeba_layout_beats_the_majority_baseline(tmp_path):
    """CelebA's Kaggle layout, generated, through every stage by `dvc exp run -S task=attributes ...`."""
    # The MLP is the model tuned here: within this budget the tiny CNN stays near the majority baseline on these
    # attributes, for a reason not yet established (docs/pipeline.md: Two tasks). So the CNN, checked here only for
    # its per-attribute metrics and its row, trains 2 epochs rather than 10 (it then ranked last; the MLP won).
    models = {"mlp": {**TINY_MODELS["mlp"], "options": {"hidden": [64]}}, "cnn": {**TINY_MODELS["cnn"], "epochs": 2}}
    repo = _make_repo(
        tmp_path,
        **{
            **TINY,
            "models": models,
            "model": "mlp",
            "tune": {"trials": 1, "epochs": 1},
            "train": {
                "epochs": 10,
                "patience": 10,
                "lr": 0.003,
                "batch_size": 32,
                "device": "cpu",
                "label_smoothing": 0.0,
            },
        },
    )
    _ok(_run(["python", "-m", "fer.cli", "synthetic-celeba", "data/celeba", "--images", "1500"], repo))
    _ok(
        _run(
            [
                "dvc",
                "exp",
                "run",
                "-S",
                "task=attributes",
                "-S",
                "data.source=folder",
                "-S",
                "data.path=data/celeba",
                "-S",
                "split.strategy=original",
                "-S",
                "align.size=48",
                UNTIL_COMPARE,
            ],
            repo,
        )
    )
    fetched = json.loads((repo / "metrics" / "fetch.json").read_text())
    assert fetched["task"] == "attributes" and fetched["images"] == 1500
    assert list(fetched["classes"]) == ["Bangs", "Eyeglasses", "Mouth_Slightly_Open", "Mustache", "Smiling"]
    split = json.loads((repo / "metrics" / "split.json").read_text())
    assert [split[name]["images"] for name in ("train", "val", "test")] == [1200, 150, 150]  # the published partition
    evaluation = json.loads((repo / "metrics" / "evaluate" / "cnn-seed42.json").read_text())
    assert set(evaluation["per_class"]["Smiling"]) >= {"accuracy", "f1", "average_precision", "majority_accuracy"}
    board = _leaderboard(repo)
    assert board["task"] == "attributes" and set(board["models"]) == {"mlp", "cnn", "tuned"}
    champion = board["models"][board["champion"]]
    assert champion["accuracy"] > board["majority_accuracy"] + 0.05, board
    assert "majority baseline" in (repo / "leaderboard.md").read_text()
