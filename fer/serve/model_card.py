"""What the served model is: its identity from its checkpoint record, its test metrics from the champion
record when it is the champion, and the git revision it was served from."""

import subprocess
from pathlib import Path

from fer.evaluate.records import ChampionRecord
from fer.runtime.record import ModelRecord


def _git_revision(repo: Path) -> str | None:
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True)
    except OSError:  # no git, as in the API's container image
        return None
    if done.returncode:
        return None
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo, capture_output=True, text=True
    ).stdout.strip()
    return done.stdout.strip() + ("-dirty" if dirty else "")


def training_note(record: ModelRecord) -> str:
    """One line on what the model was trained on; for the synthetic set, that it says nothing about real photos."""
    seen = record.trained_on
    classes = ", ".join(name for name, count in seen["classes"].items() if count)
    what = f"trained on {seen['images']} {seen['source']} images of {classes}"
    if seen["source"] == "synthetic":
        return (
            f"{what}, all drawn faces: its predictions on real photos are not meaningful until the "
            "pipeline runs on FER2013"
        )
    return what


def model_card(
    record: ModelRecord,
    checkpoint_sha256: str,
    champion: ChampionRecord | None,
    repo: str | Path = ".",
    exported_from: str | None = None,
) -> dict:
    """The champion's test metrics appear only when the served file is the champion's (same sha256), or an
    export of it (exported_from: the sha256 of the checkpoint an ONNX file was exported from)."""
    is_champion = champion is not None and champion.sha256 in (checkpoint_sha256, exported_from)
    return {
        "name": record.name,
        "arch": record.arch,
        "tuned_from": record.tuned_from,
        "task": record.task,
        "classes": record.classes,
        "image_size": record.image_size,
        "trained_on": record.trained_on,
        "training_note": training_note(record),
        "sha256": checkpoint_sha256,
        "exported_from": exported_from,
        "champion": is_champion,
        "test_metrics": champion.test_metrics if is_champion else {},
        "git_revision": _git_revision(Path(repo)),
    }
