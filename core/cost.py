"""What one image pass costs on a model, in passes of the reference model a public server's work limit is sized on.

An experiment counts its work in image passes through the model it runs on (:attr:`core.experiments.Experiment.work`);
a pass through a WRN-28-10 takes 50-66 times as long as one through the zoo's slowest model, so a request's
work is those passes times the model's **cost**: how many reference passes one of its passes takes.

The cost is estimated, not timed: ``(forward FLOPs + ELEMENT_FLOPS x activation elements written) / REFERENCE``
for one image, counted on the meta device (no weights, no arithmetic: a fraction of a second even for a
WRN-28-10), so it is the same on every run and every machine. FLOPs alone miss what bounds small and deep models
on a CPU: their per-layer, memory-bound work (normalization, activations, concatenation), so the written
elements are counted too. Timing each model would fit any machine, but it varies with the load (2 threads beside
one busy core ran PGD 6-15x slower than 1 thread; BENCHMARKS.md) and would let one upload hold the server while
it is timed. No model costs less than one reference pass: the smaller ones measured 0.2-0.8 of one, where
overhead the estimate does not see weighs most.

The constants were fitted on a 2-core CPU, one thread (BENCHMARKS.md, "Work counted in cost"). Checked there on 11
architectures (``benchmarks/work_rate.py --calibrate``: PGD-10 on 20 images, the reference on 250), the count is
never under the measured ratio: 1.2-1.8x it for the 9 bigger than the reference, 1 for two measured at 0.22 and
0.77; in runs of 1-2 steps the deepest ones (ResNet-1202, the DenseNets) measured up to 37 % over their estimate
(what is paid once per request, folding BatchNorm, weighs more there). The zoo's other models count 1 (but one:
the landscape ResNet-56-Fixup at width 0.5, 1.1).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode

from core.cache import CacheWriteError, make_key
from core.errors import CheckpointError
from core.experiments import Evaluation, RunContext, Subject, get_experiment
from core.models import ModelSpec, build_from_spec, model_entry

# The reference model: the zoo's slowest per pass (ResNeXt-29, width 0.25: 4 ms a PGD pass on one thread).
REFERENCE = ModelSpec("resnext29", "bn", width=0.25)
# A written activation element takes about as long as 95 convolution FLOPs (fitted, with the FLOPs' own rate, on a
# full-width ResNet-18 and a WRN-28-10: 23 ms per GFLOP and 2.2 ms per million elements, one pass, one thread).
ELEMENT_FLOPS = 95
# The FLOPs-equivalent of one reference pass: the reference's measured time at the fitted rate (3.94 ms); its own
# estimate comes to 1.00 of it.
REFERENCE_FLOPS = 172e6
# A training step's pass through a model, in attack passes of that model: forward, backward through activations
# and weights, the optimizer (measured 1.2-3.1x; ResNeXt's grouped convolutions the most).
TRAINING_PASS = 3


@dataclass(frozen=True)
class CostModel:
    """What a cached cost was estimated with: a changed constant is a new cache key, never a stale cost."""

    reference: ModelSpec = REFERENCE
    element_flops: float = ELEMENT_FLOPS
    reference_flops: float = REFERENCE_FLOPS


class WrittenElements(TorchDispatchMode):
    """Counts the elements every operation writes (views write none)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not func.is_view:
            self.count += sum(t.numel() for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor))
        return out


@lru_cache(maxsize=256)
def spec_cost(spec: ModelSpec) -> float:
    """The cost of one pass through a model of ``spec``, in reference passes (at least 1)."""
    return max(1.0, estimate(spec) / REFERENCE_FLOPS)


def estimate(spec: ModelSpec) -> float:
    """One image's forward FLOPs plus :data:`ELEMENT_FLOPS` per element written, on the meta device."""
    size = model_entry(spec.arch).input_size
    with torch.device("meta"):
        model, x = build_from_spec(spec).eval(), torch.zeros(1, 3, size, size)
    with FlopCounterMode(display=False) as flops, WrittenElements() as written, torch.no_grad():
        model(x)
    return flops.get_total_flops() + ELEMENT_FLOPS * written.count


def model_cost(subject: Subject, run: RunContext = RunContext()) -> float:
    """The cost of a pass through ``subject``'s model: read from the result cache by its sha256, else estimated
    from its architecture once (which loads it: only a request with work left asks) and stored there. A checkpoint
    that does not load counts 1, uncached: computing on it fails at the same load, before anything runs."""
    key = make_key("model_cost", subject.sha256, CostModel())
    found = run.results.get(key)
    if isinstance(found, dict) and isinstance(found.get("cost"), (int, float)):
        return float(found["cost"])
    try:
        spec = run.load(subject).spec
    except CheckpointError:
        return 1.0
    cost = spec_cost(spec)
    try:
        run.results.set(key, {"cost": cost, "arch": spec.arch, "width": spec.width})
    except CacheWriteError:  # a full or read-only cache: estimated again next time, the count as true
        pass
    return cost


def evaluation_work(evaluation: Evaluation, run: RunContext = RunContext()) -> int:
    """An evaluation's work in reference passes: its passes through its model times that model's cost, and the
    passes of any model it trains (:attr:`core.experiments.Experiment.trained_work`, in reference passes already)."""
    experiment = get_experiment(evaluation.experiment)
    own = experiment.work(evaluation.config)
    return math.ceil(own * model_cost(evaluation, run) + experiment.trained_work(evaluation.config))
