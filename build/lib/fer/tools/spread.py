"""Repeated measurements summarised as their median and range, as every benchmark of the project reports them."""

import statistics
from dataclasses import dataclass


@dataclass
class Spread:
    """The median of repeated measurements and their range."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: list[float]) -> "Spread":
        return cls(statistics.median(values), min(values), max(values))

    def format(self, digits: int = 0, unit: str = "") -> str:
        return f"{self.median:.{digits}f}{unit} ({self.low:.{digits}f}-{self.high:.{digits}f})"
