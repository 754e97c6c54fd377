"""How fast this machine runs each precision: a short probe, measured once per machine and kept beside the cache.

Whether bf16 autocast is faster than fp32 depends on the hardware: recent GPUs and CPUs with native bf16 run it
faster, others emulate it (on one of the project's 2-core CPUs a ResNet20 trained at 14 images/s in bf16 against
146 in fp32). So the UI and CLI never call bf16 the faster choice; they show what this probe measured here.
"""
from __future__ import annotations

import hashlib
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from core.cache import default_cache_dir
from core.device import resolve_device
from core.io import read_json, write_json
from core.models import build
from core.models.inference import AUTOCAST_DTYPES, PRECISIONS

PROBE_VERSION = 1  # part of the stored probe's key: bump when the probe changes
BATCH, REPEATS = 32, 3


def machine_key(device: torch.device) -> str:
    """The machine, as far as the probe's speed depends on it: processor, threads, torch, device."""
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else ""
    text = f"{PROBE_VERSION}|{platform.processor()}|{cpu_model()}|{torch.get_num_threads()}|{torch.__version__}|{gpu}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.machine()
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "")


def training_rate(precision: str, device: torch.device) -> float:
    """Training images per second of one SGD step of a ResNet20 (width 0.5) on 32 images, best of 3 after a
    warm-up step."""
    torch.manual_seed(0)
    model = build("resnet20", width=0.5).to(device).train()
    x, y = torch.rand(BATCH, 3, 32, 32, device=device), torch.randint(0, 10, (BATCH,), device=device)
    dtype, times = AUTOCAST_DTYPES.get(precision), []
    for _ in range(REPEATS + 1):
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return BATCH / min(times[1:])


def precision_speed(device: str | torch.device | None = None, folder: Path | None = None) -> dict[str, float]:
    """Each precision's training speed relative to fp32 on this machine (fp32 = 1), probed once and stored."""
    device = resolve_device(device)
    path = Path(folder or default_cache_dir()) / "probes" / f"precision-{machine_key(device)}.json"
    try:
        return read_json(path)
    except (OSError, ValueError):
        pass
    rates = {p: training_rate(p, device) for p in PRECISIONS}
    speed = {p: rates[p] / rates["fp32"] for p in PRECISIONS}
    write_json(path, speed)
    return speed


def speed_note(precision: str, device: str | torch.device | None = None) -> str:
    """One sentence on ``precision``'s speed here, from the probe: what the UI and CLI say beside the choice."""
    if precision == "fp32":
        return "fp32: the reference precision"
    ratio = precision_speed(device)[precision]
    where = f"on this machine ({cpu_model() or 'CPU'})" if resolve_device(device).type == "cpu" else "on this GPU"
    verdict = "faster than" if ratio > 1.1 else "slower than" if ratio < 0.9 else "about as fast as"
    return f"{precision} trains {verdict} fp32 {where}: {ratio:.2g}x fp32's images per second (probed once here)"
