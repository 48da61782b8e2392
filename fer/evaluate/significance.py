"""Is one model's accuracy different from another's on the same test images, beyond what chance gives?

The exact McNemar test: only the discordant images count (one model right, the other wrong); without a real
difference each is equally likely to go either way, so their split is Binomial(n, 1/2) (scipy's binomtest).
For attributes, each (image, attribute) decision is one trial.
"""

from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest

from fer.core.errors import FerError
from fer.evaluate.records import PredictionRow


@dataclass(frozen=True)
class PairedTest:
    only_first_right: int
    only_second_right: int
    p_value: float

    def beyond_noise(self, alpha: float) -> bool:
        return self.p_value < alpha

    @property
    def reported_p(self) -> float:
        """The p-value as the metrics files keep it: three significant digits."""
        return float(f"{self.p_value:.3g}")


def mcnemar(first_correct: np.ndarray, second_correct: np.ndarray) -> PairedTest:
    """Exact two-sided McNemar test of two 0/1 correctness arrays over the same test items, in the same order."""
    first, second = np.asarray(first_correct, bool), np.asarray(second_correct, bool)
    only_first, only_second = int((first & ~second).sum()), int((~first & second).sum())
    discordant = only_first + only_second
    p_value = binomtest(only_first, discordant, 0.5).pvalue if discordant else 1.0
    return PairedTest(only_first, only_second, float(p_value))


def paired_correctness(
    first: list[PredictionRow], second: list[PredictionRow], what: str
) -> tuple[np.ndarray, np.ndarray]:
    """The correctness of two per-image prediction lists, checked to be about the same test items (same images,
    same true answers, same order); otherwise one line naming `what`."""
    same_items = len(first) == len(second) and all(
        (a.image, a.actual) == (b.image, b.actual) for a, b in zip(first, second)
    )
    if not same_items:
        raise FerError(
            f"{what}: the per-image predictions are not about the same test images; a paired test "
            "needs both made on the same split"
        )
    return np.array([row.correct for row in first]), np.array([row.correct for row in second])
