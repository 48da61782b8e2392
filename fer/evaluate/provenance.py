"""Which hash a stage recorded for a checkpoint file, so that a consumer can refuse a corrupted copy.

DVC does not notice a corrupted cache object: `dvc checkout` restores the bad bytes and `dvc status` stays
clean. The compare stage's champion record and each evaluate stage's metrics hold the sha256 of the file
they scored; a served or evaluated checkpoint is checked against them.
"""

from pathlib import Path

from fer.core.storage import read_json
from fer.evaluate.records import EVALUATION, ChampionRecord, parse_evaluation, read_champion


def champion_if_any(record_path: str | Path) -> ChampionRecord | None:
    """The champion record, or None where there is none (a model served before the compare stage ran)."""
    return read_champion(record_path) if Path(record_path).is_file() else None


def recorded_sha256(checkpoint: str | Path, champion: ChampionRecord | None, evaluations: str | Path) -> str | None:
    """The sha256 that the champion record or an evaluation holds for this very file; None if none names it."""
    checkpoint = Path(checkpoint).resolve()
    if champion and Path(champion.checkpoint).resolve() == checkpoint:
        return champion.sha256
    for file in sorted(Path(evaluations).glob("*.json")):
        # Only the evaluation of this very file must be a valid record; the others are no concern of its reader.
        data = read_json(file, EVALUATION)
        if isinstance(data, dict) and Path(str(data.get("checkpoint"))).resolve() == checkpoint:
            return parse_evaluation(data, file).sha256
    return None
