"""Data in: sources (synthetic, Kaggle, local copies) -> one raw format -> aligned faces -> splits on disk. No torch."""
