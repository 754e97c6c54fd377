"""Device choice: CUDA when present, CPU otherwise; never hard-coded elsewhere."""
from __future__ import annotations

import copy
import os
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

from core.errors import ParameterError


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a torch device (None: the default); raises ValueError for one this machine lacks,
    so a run asked to use the GPU never quietly computes, or reports, on the CPU."""
    if device is None:
        return default_device()
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ParameterError(f"unknown device {device!r}; use 'cpu', 'cuda' or 'cuda:N'") from e
    if resolved.type == "cuda":
        check_cuda(resolved)
    elif resolved.type != "cpu":
        raise ParameterError(f"device {device!r} is not supported; use 'cpu', 'cuda' or 'cuda:N'")
    return resolved


def check_cuda(device: torch.device) -> None:
    if not torch.cuda.is_available():
        raise ParameterError(f"CUDA was asked for but is not available on this machine (device {str(device)!r}); "
                             "use --device cpu, or leave the device out to use what is there")
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise ParameterError(f"{device} was asked for but this machine has {torch.cuda.device_count()} CUDA "
                             f"device(s), cuda:0 to cuda:{torch.cuda.device_count() - 1}")


def model_device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def same_device(a: torch.device, b: torch.device) -> bool:
    """``cuda`` and ``cuda:0`` are one device (the current one); ``cpu`` is always ``cpu``."""
    index = lambda d: d.index if d.index is not None else (torch.cuda.current_device() if d.type == "cuda" else 0)
    return a.type == b.type and index(a) == index(b)


def on_device(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` on ``device``: itself where it is there already, else a copy. A model shared between callers (the
    dashboard's ``st.cache_resource``) is never moved under another caller's feet."""
    return model if same_device(model_device(model), device) else copy.deepcopy(model).to(device)


def describe_device(device: torch.device | None = None) -> str:
    device = device or default_device()
    if device.type == "cuda":
        return f"CUDA ({torch.cuda.get_device_name(device)})"
    return f"CPU ({torch.get_num_threads()} threads)"


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Move a batch to ``device``; image batches go channels-last, which oneDNN's convolutions run
    1.6-2.3x faster on CPUs here (measured on the zoo's VGG11 and ResNet20, same outputs)."""
    return x.to(device, memory_format=torch.channels_last) if x.ndim == 4 else x.to(device)


def preferred_layout(module: nn.Module) -> nn.Module:
    """``module`` (in place) with its 4-d weights channels-last on CUDA, where cuDNN's NHWC convolutions want the
    weights like the channels-last batches; unchanged on the CPU, where oneDNN reorders weights itself."""
    return module.to(memory_format=torch.channels_last) if model_device(module).type == "cuda" else module


@contextmanager
def deterministic_kernels(enabled: bool = True) -> Iterator[None]:
    """Deterministic kernels for the duration, where torch has them (cuDNN's deterministic algorithms without
    autotuning, torch's deterministic implementations, a fixed cuBLAS workspace); an op without one warns. On the
    CPU the kernels these models use are deterministic already. The previous settings are restored."""
    if not enabled:
        yield
        return
    saved = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS first starts
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[2], saved[3]
