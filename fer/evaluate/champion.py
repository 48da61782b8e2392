"""The champion: the leaderboard's best checkpoint, copied to a fixed path, and a record of what it is.

Serving reads the record (name, hash, test metrics) instead of guessing paths from a model's name, and
checks the checkpoint it loads against the recorded hash.
"""

import shutil
from pathlib import Path

from fer.core.errors import FerError
from fer.core.storage import atomic_path, file_sha256
from fer.evaluate.leaderboard import LEADERBOARD_COLUMNS, best_run, runs_by_model
from fer.evaluate.records import ChampionRecord, Evaluation, write_record

# The champion record's test metrics: the leaderboard's columns but the parameter count.
HEADLINE = tuple(column for column in LEADERBOARD_COLUMNS if column != "params")


def champion_run(leaderboard: dict, evaluations: list[Evaluation]) -> Evaluation:
    """The run promoted: the champion's best seed (a champion with several seeds is ranked on its mean)."""
    return best_run(runs_by_model(evaluations)[leaderboard["champion"]], leaderboard["rank_by"])


def promote_champion(
    leaderboard: dict, evaluations: list[Evaluation], checkpoint_path: str | Path, record_path: str | Path
) -> ChampionRecord:
    """Copy the champion's checkpoint to checkpoint_path and write its record; returns the record."""
    champion = champion_run(leaderboard, evaluations)
    source = Path(champion.checkpoint)
    if file_sha256(source) != champion.sha256:
        raise FerError(f"{source}: changed since it was evaluated; re-run its evaluate stage (dvc repro)")
    with atomic_path(checkpoint_path) as tmp:
        shutil.copyfile(source, tmp)
    record = ChampionRecord(
        name=champion.model,
        arch=champion.arch,
        seed=champion.seed,
        checkpoint=str(checkpoint_path),
        sha256=champion.sha256,
        promoted_from=str(source),
        rank_by=leaderboard["rank_by"],
        test_metrics={key: getattr(champion, key) for key in HEADLINE},
    )
    write_record(record_path, record)
    return record
