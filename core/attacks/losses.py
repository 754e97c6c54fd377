"""Per-sample attack losses; attacks ascend them (targeted attacks pass the target and a minus sign)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, labels, reduction="none")


def cw_margin(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Carlini & Wagner's margin ``max_{j != y} z_j - z_y`` (positive once misclassified)."""
    true = logits.gather(1, labels[:, None]).squeeze(1)
    others = logits.masked_fill(F.one_hot(labels, logits.shape[1]).bool(), float("-inf"))
    return others.amax(dim=1) - true


LOSSES = {"ce": cross_entropy, "cw": cw_margin}
