"""Training throughput: the NormScope trainer beside plain PyTorch loops, same model, data, batch and optimizer.

    .venv/bin/python benchmarks/train_speed.py                       # CPU: VGG11-BN width 0.25 (the cpu preset)
    .venv/bin/python benchmarks/train_speed.py --device cuda --arch resnet18 --width 1 --n 25600

Contenders (each trains ``--n`` images of the dataset's training split after a warm-up of
``--warmup`` steps, which also absorbs torch.compile's compilation; best of ``--repeats``):

* ``plain loop``: PyTorch as its tutorials write it: a ``DataLoader`` over the images with per-image
  torchvision transforms (pad-4 random crop, horizontal flip), NCHW, fp32, ``loss.item()`` every step.
* ``plain loop, data on device`` (CUDA only, the issue's baseline): the uint8 images on the GPU, the crop and
  flip done there, fp32 with TF32; ``+ bf16, channels-last, CUDA graphs`` adds autocast, channels-last and
  ``torch.compile(mode="reduce-overhead")``.
* ``trainer <precision>[, compiled]``: :func:`core.train.train_epoch`, what ``python -m core train`` runs.

The trainer's per-epoch probe (clean accuracy, 10-step PGD-l2 and LIGS on 1000 test images) is timed apart.
"""
from __future__ import annotations

import time
from dataclasses import replace
from typing import Callable

import torch
import torch.nn.functional as F

from _bench import bench_parser  # puts the repository on sys.path

from core.data import balanced_subset, load_dataset, to_float
from core.device import describe_device, resolve_device
from core.progress import null_progress
from core.train import TrainConfig, crop_flip, new_state, preset, probe, train_epoch, training_network


Run = Callable[[torch.Tensor, torch.Tensor], None]  # trains one pass over (images, labels)


def plain_loop(config: TrainConfig, data, device: torch.device) -> Run:
    """The tutorial loop: per-image transforms in a DataLoader, NCHW fp32, the loss read every step."""
    from torchvision.transforms import v2

    transform = v2.Compose([v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip(),
                            v2.ToDtype(torch.float32, scale=True)])
    state = new_state(config, data, device)
    model = state.model
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)

    def run(x: torch.Tensor, y: torch.Tensor) -> None:
        images = [(x[i], y[i]) for i in range(len(x))]
        loader = torch.utils.data.DataLoader(images, batch_size=config.batch_size, shuffle=True,
                                             collate_fn=lambda b: (torch.stack([transform(i) for i, _ in b]),
                                                                   torch.stack([t for _, t in b])))
        model.train()
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb.to(device)), yb.to(device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss.item()
    return run


def device_loop(config: TrainConfig, data, device: torch.device, fast: bool) -> Run:
    """The issue's GPU baseline: data on the device, crop and flip there; ``fast``: bf16 autocast,
    channels-last and a CUDA-graph-compiled model."""
    state = new_state(config, data, device)
    model = state.model.to(memory_format=torch.channels_last) if fast else state.model
    network = torch.compile(model, mode="reduce-overhead") if fast else model
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay, fused=True)

    def run(x: torch.Tensor, y: torch.Tensor) -> None:
        model.train()
        order = torch.randperm(len(x), device=x.device)
        for i in range(0, len(x), config.batch_size):
            idx = order[i:i + config.batch_size]
            n = len(idx)  # crops and flips drawn on the device's own generator: no copies from the host
            draws = (torch.randint(0, 9, (n,), device=x.device), torch.randint(0, 9, (n,), device=x.device),
                     torch.rand(n, device=x.device) < 0.5)
            xb = to_float(crop_flip(x[idx], draws))
            xb = xb.contiguous(memory_format=torch.channels_last) if fast else xb
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=fast):
                loss = F.cross_entropy(network(xb), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return run


def trainer(config: TrainConfig, data, device: torch.device) -> Run:
    """What ``python -m core train`` runs for each epoch."""
    state = new_state(config, data, device)
    network = training_network(state.model, config)
    return lambda x, y: train_epoch(state, config, x, y, null_progress, network)


def contenders(config: TrainConfig, device: torch.device, compile_cpu: bool) -> dict[str, tuple[Callable, bool]]:
    """name -> (factory(config, data, device), whether its images live on the device)."""
    runs = {"plain loop": (plain_loop, False)}
    if device.type == "cuda":
        runs["plain loop, data on device (fp32, TF32)"] = (lambda *a: device_loop(*a, fast=False), True)
        runs["plain loop + bf16, channels-last, CUDA graphs"] = (lambda *a: device_loop(*a, fast=True), True)
    runs["trainer fp32"] = (trainer, True)
    runs["trainer bf16"] = (lambda c, *a: trainer(replace(c, precision="bf16"), *a), True)
    if device.type == "cuda" or compile_cpu:
        runs["trainer bf16, compiled"] = (lambda c, *a: trainer(replace(c, precision="bf16", compile=True), *a), True)
    return runs


def timed(run: Callable[[], object], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    run()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    p = bench_parser(__doc__, n=5000, repeats=2)
    p.add_argument("--arch", default="vgg11")
    p.add_argument("--norm", default="bn")
    p.add_argument("--width", type=float, help="default: 0.25 on the CPU (the cpu preset), 1 on a GPU")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--warmup", type=int, default=3, help="batches trained before timing (compilation, caches)")
    p.add_argument("--compile", action="store_true", help="also time the compiled trainer on the CPU (slow start)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    device, data = resolve_device(args.device), load_dataset(args.dataset or "auto")
    width = args.width or (1.0 if device.type == "cuda" else 0.25)
    config = preset("cpu", arch=args.arch, norm=args.norm, width=width, dataset=data.name, epochs=1,
                    batch_size=args.batch)
    xs, ys = data.split("train")
    x, y, warm = xs[:args.n], ys[:args.n], args.warmup * args.batch
    print(f"{args.arch}/{args.norm} width {width} on {data.name}, batch {args.batch}, {len(x)} images, "
          f"{describe_device(device)}, torch {torch.__version__}")
    print("| loop | images/s | ratio to the plain loop |\n|---|---|---|")
    base = None
    for name, (factory, on_device) in contenders(config, device, args.compile).items():
        run = factory(config, data, device)
        xd, yd = (x.to(device), y.to(device)) if on_device else (x, y)
        run(xd[:warm], yd[:warm])
        ips = len(x) / min(timed(lambda: run(xd, yd), device) for _ in range(args.repeats))
        base = base or ips
        print(f"| {name} | {ips:.0f} | {ips / base:.2f} |", flush=True)
    report_probe(config, data, device)


def report_probe(config: TrainConfig, data, device: torch.device) -> None:
    state = new_state(config, data, device)
    xt, yt = data.split("test")
    keep = balanced_subset(yt, config.probe_per_class, data.num_classes)
    seconds = timed(lambda: probe(state.model, config, to_float(xt[keep]), yt[keep], null_progress), device)
    print(f"probe (1000 images: clean + 10-step PGD-l2 + LIGS): {seconds:.1f} s")


if __name__ == "__main__":
    main()
