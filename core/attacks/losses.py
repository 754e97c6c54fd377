"""Per-sample attack losses; attacks ascend them (targeted attacks pass the target and a minus sign)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from core.errors import ParameterError


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, labels, reduction="none")


def cw_margin(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Carlini & Wagner's margin ``max_{j != y} z_j - z_y`` (positive once misclassified)."""
    true = logits.gather(1, labels[:, None]).squeeze(1)
    others = logits.masked_fill(F.one_hot(labels, logits.shape[1]).bool(), float("-inf"))
    return others.amax(dim=1) - true


def dlr(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Croce & Hein's (2020) Difference of Logits Ratio ``-(z_y - max_{j != y} z_j) / (z_pi1 - z_pi3)``, pi
    sorting the logits in decreasing order: the CW margin made scale-invariant, so a saturated softmax (large
    logits) cannot hide its gradient. Needs at least 3 classes."""
    _need_classes(logits, 3, "DLR")
    top = logits.sort(dim=1, descending=True).values
    return cw_margin(logits, labels) / (top[:, 0] - top[:, 2] + 1e-12)


def dlr_targeted(logits: torch.Tensor, labels: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Targeted DLR (APGD-T): ``-(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2)``; rises as ``z_t`` overtakes ``z_y``.
    Needs at least 4 classes."""
    _need_classes(logits, 4, "targeted DLR")
    top = logits.sort(dim=1, descending=True).values
    gap = logits.gather(1, target[:, None]).squeeze(1) - logits.gather(1, labels[:, None]).squeeze(1)
    return gap / (top[:, 0] - 0.5 * top[:, 2] - 0.5 * top[:, 3] + 1e-12)


def _need_classes(logits: torch.Tensor, least: int, name: str) -> None:
    if logits.shape[1] < least:
        raise ParameterError(f"the {name} loss needs a model with at least {least} classes, "
                             f"this one has {logits.shape[1]}")


LOSSES = {"ce": cross_entropy, "cw": cw_margin, "dlr": dlr}
