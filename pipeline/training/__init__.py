"""The training side: data, features, the model, its evaluation and its ONNX export (pure code the
DVC stages call)."""
