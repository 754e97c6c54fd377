"""CW-loss PGD: PGD with the Carlini & Wagner margin loss, as the paper adopts from Zhang & Wang (2019)."""
from __future__ import annotations

from torch import nn

from core.attacks.pgd import PGD


class CW(PGD):
    """PGD maximizing ``max_{j != y} z_j - z_y``; same defaults as :class:`PGD` (l2, eps 0.25, 20 steps)."""

    def __init__(self, model: nn.Module, norm: str = "l2", eps: float = 0.25, steps: int = 20,
                 step_size: float | None = None, random_start: bool = False, seed: int = 0) -> None:
        super().__init__(model, norm, eps, steps, step_size, random_start, loss="cw", seed=seed)
