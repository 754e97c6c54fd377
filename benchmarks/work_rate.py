"""How long a public server's work limit lasts: image passes per second (one image through the model, forward and
backward; ``core.experiments.WORK_UNIT``) of a PGD-linf attack on each reference model, and the seconds that
``max_work_per_request`` (default 20,000) takes on it at that rate.

    .venv/bin/python benchmarks/work_rate.py [--models NAME ...] [--n 200] [--steps 10] [--limit 20000]

Sizes the default limit (core/serving.py; BENCHMARKS.md, "Public server"): the slowest model decides how long one
request can hold a computation slot.

``--full-limit``: one request at the limit per model, as a public server counts it (core.cost: passes times the
model's cost), computed through the experiment (``--experiment robustness`` or ``gallery``, PGD-linf ``--steps``,
as many images per class as the limit allows), its seconds and their ratio to the reference model's (ResNeXt-29,
measured first in the same run). ``--random ARCH`` adds a checkpoint of that architecture with random weights, as
an upload would be (``--random wrn28_10``: 146 MB)::

    .venv/bin/python benchmarks/work_rate.py --full-limit --threads 1 --random wrn28_10
"""
from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from _bench import ROOT  # puts the repository on sys.path

import core  # noqa: F401  (registers every experiment)
from core.attacks import paper_spec
from core.cache import ResultCache
from core.catalog import entries_in
from core.checkpoints import Checkpoint, load_checkpoint, save_checkpoint, weights_file
from core.cost import REFERENCE, REFERENCE_FLOPS, estimate, evaluation_work, model_cost
from core.data import balanced_subset, load_dataset, to_float
from core.device import describe_device
from core.experiments import EvalData, Evaluation, RunContext, get_experiment, images_in
from core.metrics import adversarial_examples
from core.models import ModelSpec, build, build_from_spec, model_entry
from core.serving import ServingPolicy

DEFAULT_MODELS = ("builtin-vgg11-bn", "cifar10jpeg-vgg11-bn", "cifar10jpeg-vgg16-bn", "cifar10jpeg-resnet18-bn",
                  "cifar10jpeg-resnext29-bn", "cifar10jpeg-densenet_bc-bn", "cifar10jpeg-wrn16_4-bn")


def passes_per_second(path: str, n: int, steps: int) -> tuple[float, float]:
    """(image passes per second, seconds) of PGD-linf with ``steps`` steps on ``n`` balanced test images."""
    checkpoint = load_checkpoint(path)
    x, y = load_dataset(checkpoint.dataset).split("test")
    keep = balanced_subset(y, n // checkpoint.spec.num_classes)
    x, y = to_float(x[keep]), y[keep]
    spec = paper_spec("pgd_linf", steps=steps)
    start = time.perf_counter()
    adversarial_examples(checkpoint.model.eval(), x, y, spec, checkpoint.spec.num_classes)
    seconds = time.perf_counter() - start
    return len(y) * spec.passes / seconds, seconds


REFERENCE_MODEL = "cifar10jpeg-resnext29-bn"  # core.cost.REFERENCE, as the zoo holds it
# --calibrate's architectures: the two core.cost's constants were fitted on (wrn28_10, resnet18), and deep, wide,
# grouped, depthwise and ImageNet-sized ones it was checked on
CALIBRATION = ("wrn28_10", "resnet18", "resnet18@0.25", "vgg11@0.25", "densenet_bc", "resnext29", "resnet110a",
               "resnet1202a", "kuangliu_mobilenetv2", "kuangliu_densenet121", "tv_resnet18")


def random_checkpoint(arch: str, folder: Path) -> Path:
    """A checkpoint of ``arch`` (its usual normalization) with random weights: what an upload of it costs."""
    path = folder / f"{arch}-random"
    if not weights_file(path).is_file():
        torch.manual_seed(0)
        save_checkpoint(build(arch, model_entry(arch).default_norm), path, {"dataset": "cifar10-jpeg"})
    return weights_file(path)


def limit_request(checkpoint: Checkpoint, experiment: str, steps: int, limit: int, run: RunContext) -> Evaluation:
    """The largest request of ``experiment`` (PGD-linf, ``steps``) whose counted work is within ``limit``: as many
    images per class as fit (at least one)."""
    declared = get_experiment(experiment)

    def make(per_class: int) -> Evaluation:
        data = EvalData(checkpoint.dataset, per_class=per_class)
        return Evaluation.of(checkpoint, declared, declared.config_type(paper_spec("pgd_linf", steps=steps), data))

    per_class = 1
    while evaluation_work(make(per_class + 1), run) <= limit:
        per_class += 1
    return make(per_class)


def full_limit(paths: dict[str, Path], experiment: str, steps: int, limit: int) -> None:
    """Each model's request at the limit, computed and timed; seconds as a ratio to the reference model's."""
    print(f"| model | cost (reference passes a pass) | request | counted work | seconds | x the reference |\n"
          "|---|---|---|---|---|---|")
    reference = None
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in paths.items():
            run = RunContext(cache=ResultCache(Path(tmp) / name), device="cpu")
            checkpoint = load_checkpoint(path)
            request = limit_request(checkpoint, experiment, steps, limit, run)
            work, images = evaluation_work(request, run), images_in(request.config)
            start = time.perf_counter()
            request.run(replace(run, load=lambda subject: checkpoint))
            seconds = time.perf_counter() - start
            reference = reference or seconds
            print(f"| {name} | {model_cost(checkpoint, run):.2f} | {experiment}, {images} images x PGD-{steps} | "
                  f"{work:,} | {seconds:,.1f} | {seconds / reference:.2f} |", flush=True)


def seconds_per_pass(model: torch.nn.Module, n: int, steps: int) -> float:
    """Seconds per image pass of PGD-linf (``steps``) on ``n`` random images of the model's input size."""
    size = model_entry(model.spec.arch).input_size
    x, y = torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0)), torch.arange(n) % 10
    start = time.perf_counter()
    adversarial_examples(model.eval(), x, y, paper_spec("pgd_linf", steps=steps), model.spec.num_classes)
    return (time.perf_counter() - start) / (n * steps)


def calibrate(archs: list[str], n: int, steps: int) -> None:
    """core.cost's estimate against the measured time of a pass, both as a ratio to the reference model's. The
    reference is timed in a full CPU batch (250 images): at the limit it gets 1,530 images, a big model a few."""
    reference = seconds_per_pass(build_from_spec(REFERENCE), 250, steps)
    print(f"reference {REFERENCE.arch} width {REFERENCE.width}: {reference * 1e3:.2f} ms a pass")
    print("| architecture | forward GFLOPs | estimated cost | measured ratio | estimate / measured |")
    print("|---|---|---|---|---|")
    for arch in archs:
        name, _, width = arch.partition("@")
        spec = ModelSpec(name, model_entry(name).default_norm, width=float(width or 1))
        measured = seconds_per_pass(build_from_spec(spec), n, steps) / reference
        print(f"| {arch} | {forward_flops(spec) / 1e9:.2f} | {estimate(spec) / REFERENCE_FLOPS:.2f} | {measured:.2f} | "
              f"{estimate(spec) / REFERENCE_FLOPS / measured:.2f} |", flush=True)


def forward_flops(spec: ModelSpec) -> int:
    size = model_entry(spec.arch).input_size
    with torch.device("meta"):
        model, x = build_from_spec(spec).eval(), torch.zeros(1, 3, size, size)
    with FlopCounterMode(display=False) as flops, torch.no_grad():
        model(x)
    return flops.get_total_flops()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=None)
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--limit", type=int, default=ServingPolicy().max_work_per_request)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--full-limit", action="store_true", help="time one request at the limit per model")
    p.add_argument("--experiment", choices=("robustness", "gallery"), default="robustness")
    p.add_argument("--random", nargs="*", default=[], metavar="ARCH", help="add a random-weights checkpoint of ARCH")
    p.add_argument("--calibrate", nargs="*", default=None, metavar="ARCH[@WIDTH]",
                   help="core.cost's estimate against measured time, random weights, --n images, --steps steps")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.calibrate is not None:
        print(f"device: {describe_device()}; PGD-linf {args.steps} steps on {args.n} random images")
        calibrate(args.calibrate or list(CALIBRATION), args.n, args.steps)
        return
    paths = {e.name: e.path for e in entries_in(ROOT / "checkpoints", "zoo")}
    if args.full_limit:
        print(f"device: {describe_device()}; {args.experiment} at the limit {args.limit:,}")
        names = args.models or [REFERENCE_MODEL]
        chosen = {name: paths[name] for name in [REFERENCE_MODEL, *names] if name in paths}
        folder = Path(tempfile.gettempdir()) / "normscope-work-rate"
        folder.mkdir(exist_ok=True)
        full_limit(chosen | {f"{a} (random, upload)": random_checkpoint(a, folder) for a in args.random},
                   args.experiment, args.steps, args.limit)
        return
    args.models = args.models or list(DEFAULT_MODELS)
    print(f"device: {describe_device()}; PGD-linf {args.steps} steps on {args.n} images; limit {args.limit:,}")
    print("| model | params (M) | image passes / s | limit takes (s) |\n|---|---|---|---|")
    for name in args.models:
        if name not in paths:
            print(f"| {name} | not in the zoo | | |")
            continue
        rate, _ = passes_per_second(paths[name], args.n, args.steps)
        params = sum(t.numel() for t in load_checkpoint(paths[name]).model.parameters()) / 1e6
        print(f"| {name} | {params:.2f} | {rate:,.0f} | {args.limit / rate:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
