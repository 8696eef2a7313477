"""TorchScript: traced, frozen (conv-bn folded), channels-last.

torch 2.9+ marks TorchScript deprecated (FutureWarning) in favour of torch.export; it still runs
and is still what many deployments load, so the warning is silenced here, where we chose it.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from recognizer.export.cache import package_version
from recognizer.models.spec import ModelSpec
from recognizer.models.weights import ResolvedWeights

MODEL_FILE = "model.pt"


def script(folder: Path, spec: ModelSpec, weights: ResolvedWeights) -> dict[str, Any]:
    import torch

    from recognizer.models.architectures import load_network

    network = load_network(spec, weights.path).to(memory_format=torch.channels_last)
    crop = spec.preprocessing.crop
    example = torch.zeros(1, 3, crop, crop).to(memory_format=torch.channels_last)
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        traced = torch.jit.trace(network, example, check_trace=False)
        # optimize_for_inference's prepacked ops do not survive save/load: the engine applies it.
        frozen = torch.jit.freeze(traced.eval())
    frozen.save(str(folder / MODEL_FILE))
    return {
        "precision": "fp32",
        "memory_format": "channels_last",
        "built_with": {"torch": package_version("torch")},
    }
