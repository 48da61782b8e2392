"""fer: facial-expression classifiers trained, tuned, evaluated and compared by a DVC pipeline.

Wings, lowest first; a module imports only from its own wing and the wings below it (docs/architecture.md):
core -> data -> models -> runtime -> train -> evaluate -> export -> serve -> tools -> cli.
"""
