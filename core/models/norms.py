"""Normalization layers by name: none / bn / in / ln / gn (Fixup is an init, handled by ResNets)."""
from __future__ import annotations

from torch import nn

from core.errors import ParameterError


def group_count(channels: int, max_groups: int = 32) -> int:
    """GroupNorm groups: the paper's 32 where possible, at least 2 channels per group at small widths."""
    limit = max(1, min(max_groups, channels // 2))
    return max(g for g in range(1, limit + 1) if channels % g == 0)


def make_norm(norm: str, channels: int) -> nn.Module:
    """A 2-d normalization layer over ``channels`` feature maps."""
    if norm in ("none", "fixup"):
        return nn.Identity()
    if norm == "bn":
        return nn.BatchNorm2d(channels)
    if norm == "in":
        return nn.InstanceNorm2d(channels, affine=True)
    if norm == "ln":  # LayerNorm over (C, H, W), as GroupNorm with one group
        return nn.GroupNorm(1, channels)
    if norm == "gn":
        return nn.GroupNorm(group_count(channels), channels)
    raise ParameterError(f"unknown norm {norm!r}; choose from none, bn, in, ln, gn, fixup")


def scaled(channels: int, width: float) -> int:
    """Channel count at a width multiplier (at least 4, so every norm stays defined)."""
    return max(4, int(round(channels * width)))
