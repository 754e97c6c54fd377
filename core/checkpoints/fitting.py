"""Which architecture a state dict fits (its metadata, a published layout, or its keys and shapes), and loading it
into that model strictly, every value finite."""
from __future__ import annotations

import torch

from core.errors import CheckpointError, ParameterError
from core.models import ModelSpec, NormScopeModel, build_from_spec
from core.models.infer import registry_spec
from core.models.layouts import NATIVE, Layout, read_layout


def published_layout(state: dict[str, torch.Tensor], filename: str) -> Layout:
    try:
        return read_layout(state)
    except ParameterError as e:
        raise CheckpointError(f"{filename}: {e}") from e


def with_batchnorm_counters(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], int]:
    """The state dict with the ``num_batches_tracked`` counter that BatchNorm layers saved before PyTorch 0.4.1
    lack (0, as torch's own loading of such files fills it), and how many were filled."""
    layers = [k.removesuffix(".running_var") for k in state if k.endswith(".running_var")]
    missing = [f"{layer}.num_batches_tracked" for layer in layers if f"{layer}.num_batches_tracked" not in state]
    return {**state, **{k: torch.tensor(0) for k in missing}}, len(missing)


def model_from_state(state: dict[str, torch.Tensor], spec: ModelSpec, filename: str) -> NormScopeModel:
    """Build ``spec`` and load ``state`` into it strictly, after checking every value is finite."""
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"{filename}: NaN or infinite values in {len(bad)} tensors, e.g. {bad[:3]}")
    try:
        model = build_from_spec(spec)
    except (ParameterError, TypeError) as e:
        raise CheckpointError(f"{filename}: cannot build {spec.arch}/{spec.norm}: {e}") from e
    target = model.state_dict()
    state = {**{k: v for k, v in target.items() if k.startswith("normalize.")}, **align_keys(state, target)}
    check_compatible(state, target, filename, spec)
    model.load_state_dict({k: v.to(target[k].dtype) for k, v in state.items()})
    return model.eval()


def align_keys(state: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a bare backbone state dict (ours or torchvision's) onto the wrapped model's keys."""
    if any(k.startswith("backbone.") for k in state):
        return state
    prefix = "backbone.net." if any(k.startswith("backbone.net.") for k in target) else "backbone."
    return {prefix + k: v for k, v in state.items()}


def check_compatible(state: dict, target: dict, filename: str, spec: ModelSpec) -> None:
    missing = sorted(set(target) - set(state))
    unexpected = sorted(set(state) - set(target))
    wrong = [f"{k}: {tuple(state[k].shape)} vs {tuple(target[k].shape)}"
             for k in target if k in state and state[k].shape != target[k].shape]
    if missing or unexpected or wrong:
        parts = [f"{len(missing)} missing keys (e.g. {missing[:3]})" if missing else "",
                 f"{len(unexpected)} unexpected keys (e.g. {unexpected[:3]})" if unexpected else "",
                 f"{len(wrong)} shape mismatches (e.g. {wrong[:2]})" if wrong else ""]
        raise CheckpointError(f"{filename}: does not fit {spec.arch} (norm={spec.norm}, width={spec.width}, "
                              f"classes={spec.num_classes}): " + "; ".join(p for p in parts if p))


def infer_spec(state: dict[str, torch.Tensor], layout: Layout = NATIVE) -> ModelSpec:
    """The architecture from keys (already mapped by ``layout``) and shapes, or an error naming what is
    ambiguous or unknown."""
    try:
        return layout.spec(state) or registry_spec(state)
    except ParameterError as e:
        raise CheckpointError(f"no metadata, and {e}") from e
