"""What every other wing stands on: typed params, errors, atomic storage, label names, artifact paths.

Nothing here imports torch, so parsing params.yaml and the light commands stay fast.
"""
