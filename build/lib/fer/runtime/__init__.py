"""Running a model: the device, its input spec, batched inference and the checkpoint record.

Shared by training, evaluation, serving and the benchmark, so none of them imports another for a forward pass.
"""
