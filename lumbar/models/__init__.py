"""Networks, the registry of shipped weights, and ONNX inference."""
