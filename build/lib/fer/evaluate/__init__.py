"""Scoring checkpoints on the test split, ranking them, and promoting the champion."""
