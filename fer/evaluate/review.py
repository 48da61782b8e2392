"""Verdicts for a review: did a model's test accuracy change between two revisions beyond noise?

Paired when both revisions hold per-image predictions on the same test images (exact McNemar on the images one
revision got right and the other wrong); otherwise unpaired, from the two accuracies' intervals: the change must
exceed the half-width of the difference's 95% interval, sqrt(h_old² + h_new²).
"""

import math
from dataclasses import dataclass

from fer.core.errors import FerError
from fer.evaluate.records import Evaluation, PredictionRow
from fer.evaluate.significance import mcnemar, paired_correctness

CHANGED, WITHIN_NOISE = "changed", "within noise"


@dataclass(frozen=True)
class Verdict:
    run: str  # the evaluation's name, e.g. cnn-seed42
    old: float | None  # accuracy at the base revision (None: not evaluated there)
    new: float
    verdict: str  # CHANGED | WITHIN_NOISE | "new"
    evidence: str  # how the verdict was reached
    seed_std: float | None  # the model's accuracy std over seeds, when it has several

    @property
    def change(self) -> float | None:
        return None if self.old is None else self.new - self.old

    @property
    def beyond_seeds(self) -> bool | None:
        """Whether the change exceeds two seed standard deviations (None without several seeds)."""
        if self.seed_std is None or self.change is None:
            return None
        return abs(self.change) > 2 * self.seed_std


def judge(
    run: str,
    old: dict | None,
    old_rows: list[PredictionRow] | None,
    new: Evaluation,
    new_rows: list[PredictionRow],
    alpha: float,
    seed_std: float | None = None,
) -> Verdict:
    """The verdict on one evaluation. old: the base revision's metrics file as read (any age: only its
    `accuracy`, and its interval where it has one, are used); old_rows: its per-image predictions, if it has them."""
    if old is None:
        return Verdict(run, None, new.accuracy, "new", "not evaluated at the base revision", seed_std)
    old_accuracy = float(old["accuracy"])
    paired = None
    if old_rows is not None:
        try:
            paired = mcnemar(*paired_correctness(old_rows, new_rows, run))
        except FerError:  # another split: the images are not the same ones, so the test falls back to intervals
            paired = None
    if paired is not None:
        verdict = CHANGED if paired.beyond_noise(alpha) else WITHIN_NOISE
        evidence = (
            f"paired: {paired.only_first_right} images right only before, {paired.only_second_right} only "
            f"now, McNemar p={paired.p_value:.2g}"
        )
        return Verdict(run, old_accuracy, new.accuracy, verdict, evidence, seed_std)
    new_half = (new.accuracy_ci_high - new.accuracy_ci_low) / 2
    # An older record has no interval of its own; on the same number of test images its width is about the same.
    old_half = (old["accuracy_ci_high"] - old["accuracy_ci_low"]) / 2 if "accuracy_ci_low" in old else new_half
    noise = math.hypot(old_half, new_half)
    verdict = CHANGED if abs(new.accuracy - old_accuracy) > noise else WITHIN_NOISE
    evidence = f"unpaired (the base has no per-image predictions): 95% intervals, noise ±{noise * 100:.1f} pts"
    return Verdict(run, old_accuracy, new.accuracy, verdict, evidence, seed_std)
