"""Derived artifacts (ONNX, INT8 ONNX, OpenVINO IR, TorchScript) built once and cached.

Each artifact lives in its own folder under ``<cache_dir>/artifacts/`` whose name encodes what it
was built from (model, weights hash, format, toolchain versions), next to a ``manifest.json`` that
names its parent weights and, for INT8, its calibration and measured agreement with FP32. Folders
appear atomically, so concurrent builders never see half a file. Building needs the ``export``
extra (torch, onnx); reading artifacts does not.
"""
