"""Model export: ONNX graphs with metadata, and the DeepFaceLive-compatible DFM variant."""
