"""fer: a reproducible pipeline for facial-expression classifiers."""
