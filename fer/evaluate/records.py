"""The typed records the evaluate wing writes and reads: an evaluation of one checkpoint, the champion record and
the per-image test predictions. One reader each; a file that does not fit is one line naming it.

A checkpoint's hash is `sha256` in every record.
"""

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from fer.core.errors import FerError
from fer.core.storage import atomic_path, read_json, write_json
from fer.core.tasks import RegisteredTask


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Evaluation(_Record):
    """One checkpoint scored on the test split (an evaluate stage's metrics file). A task's own metrics beyond
    these (TaskHead.test_metrics: e.g. the attributes' mean average precision and majority baseline) ride along
    as extra fields, so that a new task adds its metrics in its head alone."""

    model_config = ConfigDict(frozen=True, extra="allow")

    model: str  # its leaderboard row
    arch: str
    task: RegisteredTask
    seed: int
    checkpoint: str
    sha256: str  # of the checkpoint file scored
    predictions: str  # its per-image predictions file (PredictionRow list)
    classes: list[str]
    test_images: int
    accuracy: float
    accuracy_ci_low: float  # bootstrap interval over the test images (evaluate.interval)
    accuracy_ci_high: float
    macro_f1: float
    macro_f1_ci_low: float
    macro_f1_ci_high: float
    per_class: dict[str, dict[str, float | int | None]]
    ece: float
    params: int
    size_bytes: int
    latency_ms: float


class ChampionRecord(_Record):
    """The compare stage's champion: which run it is, where its checkpoint was copied, and its test metrics."""

    name: str
    arch: str
    seed: int
    checkpoint: str
    sha256: str
    promoted_from: str
    rank_by: str
    test_metrics: dict[str, float]


class PredictionRow(_Record):
    """One test image (for attributes: one image and attribute) as DVC's confusion plots read it: `actual` and
    `predicted` as dvclive's log_sklearn_plot("confusion_matrix") writes them, plus what a paired comparison
    needs (the probability given to the true answer)."""

    image: int  # its row in the test split
    actual: str  # class name; attributes: "<attribute>: yes|no"
    predicted: str  # class name; attributes: "yes|no"
    correct: bool
    p_true: float  # probability of the true class (attributes: of the true answer)
    confidence: float  # probability of the predicted class (answer)


_ROWS = TypeAdapter(list[PredictionRow])


def _validated(model, data, where: str, what: str):
    try:
        return model.validate_python(data) if isinstance(model, TypeAdapter) else model.model_validate(data)
    except ValidationError as err:
        problem = err.errors()[0]
        raise FerError(
            f"{where}: not {what} ({'.'.join(map(str, problem['loc']))}: {problem['msg']}); "
            "re-run the pipeline (dvc repro)"
        ) from None


EVALUATION, CHAMPION, PREDICTIONS = (
    "the metrics of an evaluate stage",
    "the champion record written by the compare stage",
    "the per-image test predictions of an evaluate stage",
)


def read_evaluation(path: str | Path) -> Evaluation:
    return parse_evaluation(read_json(path, EVALUATION), path)


def parse_evaluation(data, where: str | Path) -> Evaluation:
    """An evaluation from parsed JSON; where names it in errors."""
    return _validated(Evaluation, data, where, EVALUATION)


def read_champion(path: str | Path) -> ChampionRecord:
    return _validated(ChampionRecord, read_json(path, CHAMPION), path, CHAMPION)


def read_predictions(path: str | Path) -> list[PredictionRow]:
    return _validated(_ROWS, read_json(path, PREDICTIONS), path, PREDICTIONS)


def parse_predictions(text: str, where: str) -> list[PredictionRow]:
    """Per-image predictions from a file's text (e.g. `git show REV:PATH`); where names it in errors."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise FerError(f"{where}: not valid JSON ({err}); expected {PREDICTIONS}") from None
    return _validated(_ROWS, data, where, PREDICTIONS)


def write_record(path: str | Path, record: BaseModel) -> None:
    write_json(path, record.model_dump(exclude_none=True))


def write_predictions(path: str | Path, rows: list[PredictionRow]) -> None:
    """One row per line: git diffs stay readable and the file small (~80 bytes an image)."""
    with atomic_path(path) as tmp:
        tmp.write_text("[\n" + ",\n".join(json.dumps(row.model_dump()) for row in rows) + "\n]\n")
