"""Export of fine-tuned classifiers to an ONNX model bundle with Hugging Face Optimum."""
