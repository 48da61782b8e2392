"""Shipping the champion: ONNX and int8 ONNX exports, each checked against the PyTorch model and timed."""
