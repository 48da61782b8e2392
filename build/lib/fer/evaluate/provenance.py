"""Which hash a stage recorded for a checkpoint file, so that a consumer can refuse a corrupted copy.

DVC does not notice a corrupted cache object: `dvc checkout` restores the bad bytes and `dvc status` stays
clean. The compare stage's champion record and each evaluate stage's metrics hold the sha256 of the file
they scored; a served or evaluated checkpoint is checked against them.
"""

from pathlib import Path

from fer.core.storage import read_json


def recorded_sha256(checkpoint: str | Path, champion_record: str | Path, evaluations: str | Path) -> str | None:
    """The sha256 that the champion record or an evaluation holds for this very file; None if none names it."""
    checkpoint = Path(checkpoint).resolve()
    # Both records name the file they describe under "checkpoint"; they call its hash differently.
    records = [(Path(champion_record), "sha256")] + [(file, "checkpoint_sha256")
                                                      for file in sorted(Path(evaluations).glob("*.json"))]
    for file, hash_key in records:
        record = read_json(file, "a stage record") if file.is_file() else {}
        if isinstance(record, dict) and "checkpoint" in record and Path(record["checkpoint"]).resolve() == checkpoint:
            return record[hash_key]
    return None
