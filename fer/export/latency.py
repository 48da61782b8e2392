"""CPU latency of a callable: warm-up runs outside the timed region, then the median and quartiles of repeats."""

import time
from collections.abc import Callable

import numpy as np

WARMUP_RUNS = 3


def time_ms(run: Callable[[], object], repeats: int) -> dict:
    """Median and interquartile range, in ms, of `repeats` timed calls of run."""
    for _ in range(WARMUP_RUNS):
        run()
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        timings.append((time.perf_counter() - start) * 1000)
    q25, median, q75 = np.percentile(timings, [25, 50, 75])
    return {"median": round(float(median), 3), "q25": round(float(q25), 3), "q75": round(float(q75), 3)}
