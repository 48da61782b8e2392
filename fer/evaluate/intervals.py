"""95% intervals of accuracy and macro-F1 over the choice of test images: scipy's bootstrap of the images.

The scores are recomputed on thousands of resamples at once, so they are written here in numpy over a batch of
resamples (sklearn's scorers take one sample at a time: ~10 s an evaluation instead of well under one); a test
checks them against sklearn on the full data.
"""

from dataclasses import dataclass

import numpy as np
from scipy.stats import bootstrap

# Any fixed seed: the same predictions must give the same interval on every run (metrics files are diffed).
BOOTSTRAP_SEED = 0
BATCH = 500  # resamples scored at once: bounds memory at (BATCH, N) for the 3,589 images of FER2013's test set


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros(denominator.shape), where=denominator > 0)


def class_scores(truth: np.ndarray, guess: np.ndarray, n_classes: int) -> np.ndarray:
    """[accuracy, macro-F1] of class indices (..., N), over the last axis: macro-F1 over the classes that occur
    in truth or guess, as sklearn's f1_score(average="macro") counts them."""
    f1s, present = [], []
    for k in range(n_classes):
        actual, predicted = truth == k, guess == k
        tp, fp, fn = (actual & predicted).sum(-1), (~actual & predicted).sum(-1), (actual & ~predicted).sum(-1)
        f1s.append(_f1(tp, fp, fn))
        present.append((tp + fp + fn) > 0)
    macro_f1 = np.sum(f1s, 0) / np.maximum(np.sum(present, 0), 1)
    return np.stack([(truth == guess).mean(-1), macro_f1])


def attribute_scores(truth: np.ndarray, guess: np.ndarray) -> np.ndarray:
    """[mean accuracy, mean F1] over the attributes of 0/1 arrays (..., N, K), as evaluation.attribute_metrics
    averages them (an attribute with no positive answer in truth or guess scores F1 0)."""
    truth, guess = truth.astype(bool), guess.astype(bool)
    tp, fp, fn = (truth & guess).sum(-2), (~truth & guess).sum(-2), (truth & ~guess).sum(-2)
    return np.stack([(truth == guess).mean((-2, -1)), _f1(tp, fp, fn).mean(-1)])


def score_intervals(truth: np.ndarray, guess: np.ndarray, n_classes: int, confidence: float,
                    resamples: int) -> tuple[Interval, Interval]:
    """Percentile-bootstrap intervals (accuracy, macro-F1) of predictions against labels, resampling test images:
    class indices (N,), or 0/1 attributes (N, K)."""
    attributes = truth.ndim == 2

    def scores(images: np.ndarray, axis: int = -1) -> np.ndarray:
        if attributes:
            return attribute_scores(truth[images], guess[images])
        return class_scores(truth[images], guess[images], n_classes)

    # Percentile, not BCa: a score of exactly 0 or 1 (a tiny or perfect test) leaves BCa undefined.
    result = bootstrap((np.arange(len(truth)),), scores, vectorized=True, n_resamples=resamples, batch=BATCH,
                       confidence_level=confidence, method="percentile",
                       random_state=np.random.default_rng(BOOTSTRAP_SEED))
    low, high = result.confidence_interval
    return Interval(float(low[0]), float(high[0])), Interval(float(low[1]), float(high[1]))
