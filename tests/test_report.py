"""fer report on two real git revisions of a small DVC repository."""

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from PIL import Image

from fer.tools.report import build_report, model_metrics_section, params_section, render_plots

DVC_YAML = {
    "stages": {
        "evaluate": {
            "cmd": "true",
            "params": ["model", "models"],
            "metrics": [
                {"metrics/evaluate/cnn.json": {"cache": False}},
                {"metrics/evaluate/mlp.json": {"cache": False}},
            ],
            "plots": [{"plots/leaderboard.json": {"cache": False, "x": "accuracy", "y": "model",
                                                  "template": "bar_horizontal"}}],
        }
    }
}


def _git(repo, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=repo, check=True,
                   capture_output=True)


def _write_revision(repo, lr, cnn_accuracy):
    params = {"model": "cnn", "models": {"cnn": {"lr": lr}, "mlp": {"lr": 0.001}}}
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    (repo / "metrics" / "evaluate").mkdir(parents=True, exist_ok=True)
    (repo / "metrics" / "evaluate" / "cnn.json").write_text(json.dumps({"accuracy": cnn_accuracy, "macro_f1": 0.5}))
    (repo / "metrics" / "evaluate" / "mlp.json").write_text(json.dumps({"accuracy": 0.4, "macro_f1": 0.3}))
    (repo / "plots").mkdir(exist_ok=True)
    board = [{"model": "cnn", "accuracy": cnn_accuracy}, {"model": "mlp", "accuracy": 0.4}]
    (repo / "plots" / "leaderboard.json").write_text(json.dumps(board))
    (repo / "leaderboard.md").write_text("| Rank | Model |\n|---|---|\n| 1 | cnn (champion) |\n")


def test_report_on_two_revisions_shows_changed_params_and_metric_deltas(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")  # our dvc
    _git(repo, "init", "-q", "-b", "main")
    subprocess.run(["dvc", "init", "-q"], cwd=repo, check=True)
    (repo / "dvc.yaml").write_text(yaml.safe_dump(DVC_YAML))
    _write_revision(repo, lr=0.002, cnn_accuracy=0.60)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "base")
    _git(repo, "checkout", "-q", "-b", "experiment")
    _write_revision(repo, lr=0.01, cnn_accuracy=0.65)
    _git(repo, "commit", "-qam", "faster lr")

    report = build_report("main", repo, plot_images=["plots/leaderboard.png"])
    assert "| `models.cnn.lr` | 0.002 | 0.01 |" in report
    assert "| cnn | accuracy | 0.6 | 0.65 | +0.05 |" in report
    assert "| mlp |" not in report  # unchanged models are not listed as changes
    assert "cnn (champion)" in report
    assert "![leaderboard](plots/leaderboard.png)" in report

    drawn = render_plots("main", tmp_path / "drawn", ["plots/leader*"], repo)
    assert drawn == [tmp_path / "drawn" / "plots_leaderboard.png"]
    with Image.open(drawn[0]) as image:
        assert image.format == "PNG" and image.width > 200
    assert render_plots("main", tmp_path / "none", ["plots/confusion/*"], repo) == []


def test_sections_say_so_when_nothing_changed():
    assert "No params changed" in params_section({})
    assert "No accuracy or macro-F1 changed" in model_metrics_section({"metrics/leaderboard.json": {}})
