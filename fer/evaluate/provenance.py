"""Which hash a stage recorded for a checkpoint file, so that a consumer can refuse a corrupted copy.

DVC does not notice a corrupted cache object: `dvc checkout` restores the bad bytes and `dvc status` stays
clean. The compare stage's champion record and each evaluate stage's metrics hold the sha256 of the file
they scored; a served or evaluated checkpoint is checked against them.
"""

from pathlib import Path

from fer.evaluate.records import ChampionRecord, read_champion, read_evaluation


def champion_if_any(record_path: str | Path) -> ChampionRecord | None:
    """The champion record, or None where there is none (a model served before the compare stage ran)."""
    return read_champion(record_path) if Path(record_path).is_file() else None


def recorded_sha256(checkpoint: str | Path, champion: ChampionRecord | None, evaluations: str | Path) -> str | None:
    """The sha256 that the champion record or an evaluation holds for this very file; None if none names it."""
    checkpoint = Path(checkpoint).resolve()
    if champion and Path(champion.checkpoint).resolve() == checkpoint:
        return champion.sha256
    records = (read_evaluation(file) for file in sorted(Path(evaluations).glob("*.json")))
    return next((record.sha256 for record in records if Path(record.checkpoint).resolve() == checkpoint), None)
