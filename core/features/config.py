"""Feature dataset recipes: the kinds (App. C, F), their paper defaults, and the CPU presets."""
from __future__ import annotations

from dataclasses import dataclass, replace

from core.attacks import AttackSpec
from core.config import one_of
from core.errors import ParameterError
from core.experiments import EvalData
from core.io import safe_name

FEATURE_MATCHING = ("D_R", "D_NR")  # Eq. A2
ADVERSARIAL_KINDS = {"D_rand": "random", "D_det": "next", "D_conflict": "next"}  # kind -> attack target mode
KINDS = FEATURE_MATCHING + tuple(ADVERSARIAL_KINDS)
HOLDOUT_KINDS = ("D_det", "D_conflict")  # kinds whose held-out images form a ``conflict`` split
# CPU presets keep the paper's step sizes and budgets and cut the images (and Eq. A2's iterations).
PRESETS = {"paper": {}, "cpu": dict(per_class=200, steps_a2=100), "tiny": dict(per_class=20, steps_a2=20)}


@dataclass(frozen=True)
class FeatureConfig:
    """One feature dataset. Defaults are the paper's: all 50k training images (5000 per class); Eq. A2 with
    step 0.1 and 1000 iterations; the adversarial kinds with l2 eps 0.5, step 0.1, 100 iterations.
    ``steps=None`` is the kind's paper default. D_conflict names the D_R dataset it starts from (``start``)."""

    kind: str = one_of(KINDS, "D_NR")
    data: EvalData = EvalData(split="train", per_class=5000)
    steps: int | None = None
    step_size: float = 0.1
    eps: float = 0.5  # adversarial kinds only: Eq. A2 has no bound
    start: str = ""  # D_conflict: the id of the D_R dataset whose images the attack starts from
    holdout: float = 0.1  # D_det / D_conflict: fraction kept out of training as the conflict split
    seed: int = 0
    preset: str = one_of(tuple(PRESETS), "paper")

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ParameterError(f"unknown feature dataset kind {self.kind!r}; choose from {', '.join(KINDS)}")
        if self.steps is not None and self.steps < 1:
            raise ParameterError(f"steps must be at least 1, got {self.steps}")
        if not (self.step_size > 0 and self.eps > 0 and 0 <= self.holdout < 1):
            raise ParameterError("step size and eps must be positive and holdout in [0, 1)")
        if (self.kind == "D_conflict") != bool(self.start):
            raise ParameterError("D_conflict (and only it) starts from a D_R dataset: set start to that dataset's id")
        if self.start:
            safe_name(self.start, "start (a D_R dataset's id)")
        # a preset names a row of PRESETS, and becomes part of the dataset's folder name: never free text
        if self.preset not in PRESETS:
            raise ParameterError(f"unknown feature preset {str(self.preset)[:80]!r}; choose from {', '.join(PRESETS)}")

    @property
    def iterations(self) -> int:
        return self.steps if self.steps is not None else (1000 if self.kind in FEATURE_MATCHING else 100)

    @property
    def attack(self) -> AttackSpec:
        """The targeted attack of the adversarial kinds."""
        return AttackSpec("pgd_l2", self.eps, self.iterations, self.step_size, target=ADVERSARIAL_KINDS[self.kind],
                          seed=self.seed)


def feature_config(kind: str, preset: str = "paper", **overrides) -> FeatureConfig:
    """The config of ``kind`` under a named preset (see :data:`PRESETS`), with overrides."""
    if preset not in PRESETS:
        raise ParameterError(f"unknown feature preset {preset!r}; choose from {', '.join(PRESETS)}")
    p = PRESETS[preset]
    base = FeatureConfig(kind=kind, start=overrides.pop("start", ""), preset=preset)
    if "per_class" in p:
        base = replace(base, data=replace(base.data, per_class=p["per_class"]))
    if "steps_a2" in p and kind in FEATURE_MATCHING:
        base = replace(base, steps=p["steps_a2"])
    return replace(base, **overrides)
