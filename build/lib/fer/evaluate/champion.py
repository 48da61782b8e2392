"""The champion: the leaderboard's best checkpoint, copied to a fixed path, and a record of what it is.

Serving reads the record (name, hash, test metrics) instead of guessing paths from a model's name, and
checks the checkpoint it loads against the recorded hash.
"""

import shutil
from pathlib import Path

from fer.core.errors import FerError
from fer.core.storage import atomic_path, file_sha256, read_json, write_json
from fer.evaluate.leaderboard import runs_by_model

HEADLINE = ("accuracy", "macro_f1", "ece", "latency_ms")


def promote_champion(leaderboard: dict, evaluations: list[dict], checkpoint_path: str | Path,
                     record_path: str | Path) -> dict:
    """Copy the champion's checkpoint to checkpoint_path and write its record; returns the record.

    A champion trained with several seeds is ranked on its mean; the run promoted is its best seed by the
    same metric (ties: higher accuracy, then the lower seed).
    """
    rank_by = leaderboard["rank_by"]
    runs = runs_by_model(evaluations)[leaderboard["champion"]]
    champion = min(runs, key=lambda e: (-e[rank_by], -e["accuracy"], e["seed"]))
    source = Path(champion["checkpoint"])
    if file_sha256(source) != champion["checkpoint_sha256"]:
        raise FerError(f"{source}: changed since it was evaluated; re-run its evaluate stage (dvc repro)")
    with atomic_path(checkpoint_path) as tmp:
        shutil.copyfile(source, tmp)
    record = {
        "name": champion["model"],
        "arch": champion["arch"],
        "seed": champion["seed"],
        "checkpoint": str(checkpoint_path),
        "sha256": champion["checkpoint_sha256"],
        "promoted_from": str(source),
        "rank_by": leaderboard["rank_by"],
        "test_metrics": {key: champion[key] for key in HEADLINE if key in champion},
    }
    write_json(record_path, record)
    return record


def read_champion(record_path: str | Path) -> dict:
    return read_json(record_path, "the champion record written by the compare stage")
