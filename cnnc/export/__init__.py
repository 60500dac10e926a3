"""Exporters: a layer graph and its weights written for other runtimes (onnx_export.py)."""
