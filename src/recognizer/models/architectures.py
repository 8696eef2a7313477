"""Build a model's network and load a state dict into it. The only module here that needs torch."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from recognizer.errors import WeightsIntegrityError
from recognizer.models.spec import ModelSpec

if TYPE_CHECKING:
    import torch


def build_module(spec: ModelSpec) -> torch.nn.Module:
    """An untrained network of the right architecture (never downloads anything)."""
    library, _, builder = spec.architecture.partition(":")
    if library == "torchvision":
        import torchvision.models

        return torchvision.models.get_model(builder, weights=None, num_classes=spec.num_classes)
    if library == "timm":
        import timm

        return timm.create_model(builder, pretrained=False, num_classes=spec.num_classes)
    raise ValueError(f"{spec.name}: unsupported architecture source {spec.architecture!r}")


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad archive; all mean "not loadable"
        raise WeightsIntegrityError(
            f"weights file {path} could not be read as a PyTorch state dict ({type(exc).__name__}: {exc}); "
            f"it may be truncated or in another format"
        ) from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]  # training checkpoints wrap the weights
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsIntegrityError(f"weights file {path} does not hold a state dict of tensors")
    return state


def _map_positional(
    state: dict[str, torch.Tensor], target: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Rename keys by position: for checkpoints from another implementation of the same network."""
    if len(state) != len(target):
        raise WeightsIntegrityError(f"state dict has {len(state)} tensors, the network expects {len(target)}")
    return dict(zip(target, state.values(), strict=True))


def load_network(spec: ModelSpec, weights_path: Path) -> torch.nn.Module:
    """Build ``spec``'s network, load the weights file, and return it in eval mode."""
    module = build_module(spec)
    state = read_state_dict(weights_path)
    if spec.weights.key_map == "positional" and set(state) != set(module.state_dict()):
        state = _map_positional(state, module.state_dict())
    expected = module.state_dict()
    wrong = [k for k, v in state.items() if k in expected and expected[k].shape != v.shape]
    missing, unexpected = set(expected) - set(state), set(state) - set(expected)
    if wrong or missing or unexpected:
        detail = f"{len(missing)} missing, {len(unexpected)} unexpected, {len(wrong)} wrong-shaped tensors"
        example = next(iter(wrong or sorted(missing) or sorted(unexpected)))
        raise WeightsIntegrityError(
            f"weights file {weights_path} does not fit {spec.name} ({detail}, e.g. {example!r}); "
            f"is it a state dict for another architecture?"
        )
    module.load_state_dict(state)
    return module.eval()
