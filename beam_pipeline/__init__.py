"""Scoring with Apache Beam and ONNX Runtime. Imports neither torch nor transformers."""
