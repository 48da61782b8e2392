"""What the served model is: its name and arch, its test metrics, and the git/DVC revision it came from."""

import json
import subprocess
from pathlib import Path

import yaml

HEADLINE = ("accuracy", "macro_f1", "ece", "latency_ms")


def _git_revision(repo: Path) -> str | None:
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True)
    except OSError:  # no git, as in the API's container image
        return None
    if done.returncode:
        return None
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                           capture_output=True, text=True).stdout.strip()
    return done.stdout.strip() + ("-dirty" if dirty else "")


def _dvc_md5(repo: Path, checkpoint: Path) -> str | None:
    """The checkpoint's md5 as recorded in dvc.lock, i.e. the DVC revision of the model being served."""
    lock = repo / "dvc.lock"
    if not lock.is_file():
        return None
    try:
        relative = checkpoint.resolve().relative_to(repo.resolve()).as_posix()
    except ValueError:
        return None
    for stage in (yaml.safe_load(lock.read_text()) or {}).get("stages", {}).values():
        for out in stage.get("outs", []):
            if out["path"] == relative:
                return out.get("md5")
    return None


def model_card(name: str, meta: dict, checkpoint: str | Path, repo: str | Path = ".") -> dict:
    repo, checkpoint = Path(repo), Path(checkpoint)
    evaluation = repo / "metrics" / "evaluate" / f"{name}.json"
    metrics = json.loads(evaluation.read_text()) if evaluation.is_file() else {}
    return {
        "name": name,
        "arch": meta["arch"],
        "classes": meta["classes"],
        "image_size": meta["image_size"],
        "checkpoint": str(checkpoint),
        "test_metrics": {k: metrics[k] for k in HEADLINE if k in metrics},
        "git_revision": _git_revision(repo),
        "dvc_md5": _dvc_md5(repo, checkpoint),
    }
