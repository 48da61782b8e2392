"""95% intervals of accuracy and macro-F1 over the choice of test images: scipy's bootstrap of the images.

The scores are recomputed on thousands of resamples at once, so each task head writes them in numpy over a
batch of resamples (TaskHead.resampled_scores; sklearn's scorers take one sample at a time: ~10 s an evaluation
instead of well under one); a test checks them against the head's test metrics on the full data.
"""

from dataclasses import dataclass

import numpy as np
from scipy.stats import bootstrap

from fer.core.tasks.head import TaskHead, round_metric

# Any fixed seed: the same predictions must give the same interval on every run (metrics files are diffed).
BOOTSTRAP_SEED = 0
BATCH = 500  # resamples scored at once: bounds memory at (BATCH, N) for the 3,589 images of FER2013's test set


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


def score_intervals(
    truth: np.ndarray, guess: np.ndarray, head: TaskHead, confidence: float, resamples: int
) -> tuple[Interval, Interval]:
    """Percentile-bootstrap intervals (accuracy, macro-F1) of the head's decisions against labels, resampling
    test images."""

    def scores(images: np.ndarray, axis: int = -1) -> np.ndarray:
        return head.resampled_scores(truth[images], guess[images])

    # Percentile, not BCa: a score of exactly 0 or 1 (a tiny or perfect test) leaves BCa undefined.
    result = bootstrap(
        (np.arange(len(truth)),),
        scores,
        vectorized=True,
        n_resamples=resamples,
        batch=BATCH,
        confidence_level=confidence,
        method="percentile",
        random_state=np.random.default_rng(BOOTSTRAP_SEED),
    )
    low, high = result.confidence_interval
    return Interval(float(low[0]), float(high[0])), Interval(float(low[1]), float(high[1]))


def interval_fields(
    truth: np.ndarray, guess: np.ndarray, head: TaskHead, confidence: float, resamples: int
) -> dict[str, float]:
    """score_intervals as the metrics files keep them."""
    accuracy, macro_f1 = score_intervals(truth, guess, head, confidence, resamples)
    return {
        "accuracy_ci_low": round_metric(accuracy.low),
        "accuracy_ci_high": round_metric(accuracy.high),
        "macro_f1_ci_low": round_metric(macro_f1.low),
        "macro_f1_ci_high": round_metric(macro_f1.high),
    }
