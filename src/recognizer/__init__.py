"""recognizer: offline ImageNet-1K image recognition.

The public entry points are :func:`recognizer.inference.build_predictor` and the ``recognizer``
command; everything else is reachable but may change between minor versions.
"""

__version__ = "0.1.0"
