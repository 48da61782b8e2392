"""DVC experiments on tiny configs, in a throwaway copy of the repository: seeds, and sweeps through the queue."""

import json
import statistics
import time

import pytest
import yaml
from test_pipeline_e2e import TINY, TINY_MODELS, _make_repo, _repro, _run

pytestmark = pytest.mark.e2e
PLAIN_ROW = {"rank", "accuracy", "macro_f1", "ece", "latency_ms", "params"}


def _leaderboard(repo) -> dict:
    return json.loads((repo / "metrics" / "leaderboard.json").read_text())


def _ok(result):
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_several_seeds_report_mean_and_std_and_one_seed_brings_the_plain_table_back(tmp_path):
    repo = _make_repo(tmp_path, **{**TINY, "models": {"mlp": TINY_MODELS["mlp"]}, "model": "mlp"}, seeds=[1, 2, 3])
    _repro(repo)
    runs = [json.loads((repo / "metrics" / "evaluate" / f"mlp-seed{seed}.json").read_text()) for seed in (1, 2, 3)]
    assert len({run["accuracy"] for run in runs} | {run["macro_f1"] for run in runs}) > 2  # the seeds differ
    board = _leaderboard(repo)
    assert set(board["models"]) == {"mlp", "tuned"}
    mlp = board["models"]["mlp"]
    assert mlp["seeds"] == 3
    for key in ("accuracy", "macro_f1"):
        assert mlp[key] == pytest.approx(statistics.fmean(run[key] for run in runs))
        assert mlp[f"{key}_std"] == pytest.approx(statistics.stdev(run[key] for run in runs))
    assert f"{mlp['accuracy']:.4f} ± {mlp['accuracy_std']:.4f}" in (repo / "leaderboard.md").read_text()

    out = _ok(_run(["dvc", "exp", "run", "-S", "seeds=[1]"], repo))
    assert "Running stage 'train@" not in out and "Running stage 'compare'" in out  # seed 1 is reused
    board = _leaderboard(repo)
    assert set(board["models"]) == {"mlp", "tuned"}
    assert all(set(row) == PLAIN_ROW for row in board["models"].values())
    assert board["models"]["mlp"]["accuracy"] == runs[0]["accuracy"]
    assert "±" not in (repo / "leaderboard.md").read_text()
