"""What every other wing stands on: typed params, errors, atomic storage, label sets and their task heads,
artifact paths.

Nothing here imports torch when imported (the task heads import it inside the methods that take tensors), so
parsing params.yaml and the light commands stay fast.
"""
