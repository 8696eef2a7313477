"""Derived artifacts (ONNX, later INT8/TorchScript/OpenVINO) built once and cached.

Each artifact lives in its own folder under ``<cache_dir>/artifacts/`` whose name encodes what it
was built from (model, weights hash, format, toolchain version), next to a ``manifest.json`` that
names its parent weights. Folders appear atomically, so concurrent builders never see half a file.
"""
