"""What every CIFAR backbone is: penultimate activations (``forward_features``, the g of the feature datasets'
Eq. A2) and a linear ``head`` on them."""
from __future__ import annotations

import torch
from torch import nn


class Backbone(nn.Module):
    """Subclasses build ``head`` (an ``nn.Linear``) and write :meth:`forward_features`."""

    head: nn.Linear

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


def pooled(x: torch.Tensor) -> torch.Tensor:
    """Global average pooling, flattened: ``[N, C, H, W] -> [N, C]``."""
    return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
