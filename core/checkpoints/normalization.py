"""The input normalization (mean/std) a model was trained behind: recorded in the metadata, found in the state
dict's buffers, or given by the user; never guessed, since a wrong one silently changes every number."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from core.errors import CheckpointError, ParameterError
from core.models import CIFAR10_MEAN, CIFAR10_STD, IMAGENET_MEAN, IMAGENET_STD, NormScopeModel
from core.models.layouts import Layout


@dataclass(frozen=True)
class InputNormalization:
    """The per-channel ``(x - mean) / std`` on [0, 1] pixels that a model was trained behind (R, G, B).

    It becomes the model's first layer, so attacks work in pixel space; a wrong one shifts every accuracy and
    robustness number without any error, which is why a file that does not record it is asked about.
    """

    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __post_init__(self) -> None:
        mean, std = tuple(float(v) for v in self.mean), tuple(float(v) for v in self.std)
        if len(mean) != 3 or len(std) != 3:
            raise ParameterError(f"mean and std need 3 values each (R, G, B), got {len(mean)} and {len(std)}")
        if not all(math.isfinite(v) for v in mean + std) or min(std) <= 0:
            raise ParameterError(f"mean must be finite and std positive, got mean {mean}, std {std}")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    def matches(self, other: InputNormalization, tol: float = 1e-3) -> bool:
        """Equal up to rounding (files store 0.2471 or 0.24703225 for the same CIFAR-10 std)."""
        return all(abs(a - b) <= tol for a, b in zip(self.mean + self.std, other.mean + other.std))

    def __str__(self) -> str:
        return f"mean ({', '.join(f'{v:.4g}' for v in self.mean)}), std ({', '.join(f'{v:.4g}' for v in self.std)})"


INPUT_NORMALIZATIONS = {  # the choices offered where a file does not record its normalization
    "cifar10": InputNormalization(CIFAR10_MEAN, CIFAR10_STD),
    "cifar10-kuangliu": InputNormalization(CIFAR10_MEAN, (0.2023, 0.1994, 0.2010)),  # kuangliu's and MadryLab's
    "imagenet": InputNormalization(IMAGENET_MEAN, IMAGENET_STD),
    "none": InputNormalization((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
}


# mean/std buffers that checkpoints carry inside the model: NormScope's own, RobustBench's, MadryLab robustness'
NORMALIZATION_BUFFERS = (("normalize.mean", "normalize.std"), ("mu", "sigma"),
                         ("normalizer.new_mean", "normalizer.new_std"))


class NormalizationUnknown(CheckpointError):
    """The file records no input normalization: the caller must say which (never assumed)."""

    def __init__(self, filename: str, layout: Layout) -> None:
        self.layout = layout
        choices = "; ".join(f"{k}: {v}" for k, v in INPUT_NORMALIZATIONS.items())
        hint = f" ({layout.hint})" if layout.hint else ""
        super().__init__(f"{filename}: the file does not record the input normalization (mean/std) its model was "
                         "trained behind, and a wrong one silently changes every number, so it is not guessed. Its "
                         f"keys read as {layout.source}{hint}. Say which, e.g. {choices} "
                         "(command line: --mean R G B --std R G B)")


def with_normalization(model: NormScopeModel, norm: InputNormalization) -> NormScopeModel:
    """Set the model's input normalization layer and the spec that records it."""
    model.spec = replace(model.spec, mean=norm.mean, std=norm.std)
    model.normalize.mean.copy_(torch.tensor(norm.mean).view_as(model.normalize.mean))
    model.normalize.std.copy_(torch.tensor(norm.std).view_as(model.normalize.std))
    return model


def split_normalization(state: dict[str, torch.Tensor],
                        filename: str) -> tuple[dict[str, torch.Tensor], InputNormalization | None]:
    """The state dict without its mean/std buffers, and the normalization they hold (None: none found)."""
    for mean_key, std_key in NORMALIZATION_BUFFERS:
        if mean_key in state and std_key in state:
            mean, std = (state[k].flatten().tolist() for k in (mean_key, std_key))
            try:
                found = InputNormalization(tuple(mean * 3 if len(mean) == 1 else mean),
                                           tuple(std * 3 if len(std) == 1 else std))
            except ParameterError as e:
                raise CheckpointError(f"{filename}: its {mean_key}/{std_key} buffers are no input normalization: "
                                      f"{e}") from e
            return {k: v for k, v in state.items() if k not in (mean_key, std_key)}, found
    return state, None


def resolve_normalization(found: InputNormalization | None, given: InputNormalization | None, filename: str,
                          layout: Layout) -> InputNormalization:
    """What the file records, else what the caller gives; a given one that contradicts the file is an error."""
    if found is not None and given is not None and not given.matches(found):
        raise CheckpointError(f"{filename}: the file records the input normalization {found}, not the given "
                              f"{given}; leave mean/std unset to use the file's")
    if found is None and given is None:
        raise NormalizationUnknown(filename, layout)
    return found or given  # type: ignore[return-value]
