"""Shared fixtures: an isolated cache, and a BN / no-BN pair trained in seconds on the built-in data."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch

torch.set_num_threads(2)
# TorchInductor's cache key leaves out ATEN_CPU_CAPABILITY: C++ kernels generated under avx2 (with at::vec) are
# reused, and fail to compile, under ``default``. One cache per kernel path keeps the runs of .ci/run apart.
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", os.path.join(
    tempfile.gettempdir(), f"normscope-inductor-{torch.backends.cpu.get_cpu_capability().lower()}"))
# NORMSCOPE_ONEDNN=0 runs the suite on ATen's own convolutions instead of oneDNN's: another CPU kernel path
# (README, "Tests on any CPU"), beside ATEN_CPU_CAPABILITY's.
torch.backends.mkldnn.enabled = os.environ.get("NORMSCOPE_ONEDNN", "1") != "0"
# The tests' job kinds (tests/job_kinds.py), known to the job processes the tests start as well as to the tests.
os.environ["NORMSCOPE_JOB_MODULES"] = "tests.job_kinds"


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("NORMSCOPE_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session")
def builtin():
    from core.data import load_dataset

    return load_dataset("builtin")


# Tests whose outcome depends on trained weights, which rounding on another CPU kernel path can move: CI re-runs
# them under each ATEN_CPU_CAPABILITY (``-m numerics``). Those using a trained fixture are marked here; tests
# that train their own models carry the mark themselves.
TRAINED_FIXTURES = {"trained_pair"}  # vgg_bn and the like take it, so count too
# Modules whose checks do not depend on which kernels trained the pair: pages rendering (AppTest, the browser),
# and a path compared with a second run of itself on the same machine (the CUDA suite's CPU cases).
NOT_NUMERICS = {"test_app", "test_app_inputs", "test_app_robustness", "test_browser", "test_cuda", "test_cuda_paths"}


# The slow tier (``-m slow``; the quick one is ``-m "not slow"``): tests that drive the app (AppTest, a browser), start
# processes (the CLI, jobs, a Ray cluster), read the real data, or train models (the trained pair, once per session).
SLOW_MODULES = {"test_app", "test_app_inputs", "test_app_robustness", "test_browser", "test_cluster", "test_cli",
                "test_jobs", "test_zoo"}


def pytest_collection_modifyitems(items):
    for item in items:
        module = item.module.__name__.rpartition(".")[2]
        trained = TRAINED_FIXTURES & set(getattr(item, "fixturenames", ()))
        if trained and module not in NOT_NUMERICS:
            item.add_marker(pytest.mark.numerics)
        if trained or module in SLOW_MODULES or item.get_closest_marker("numerics"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def trained_pair(tmp_path_factory, builtin):
    """{"none": model, "bn": model}: the ``tiny`` preset's VGG11s (the built-in demo's pair, 6 epochs).

    The preset is sized so that the BN model follows the non-robust cue and the norm-free one the robust cue on
    every seed and kernel path measured (README), so tests may compare their directions with wide margins."""
    from core.checkpoints import load_checkpoint
    from core.train import preset, train

    out, models = tmp_path_factory.mktemp("pair"), {}
    for norm in ("none", "bn"):
        train(preset("tiny", arch="vgg11", norm=norm), out / norm, dataset=builtin)
        models[norm] = load_checkpoint(out / f"{norm}.safetensors")
    return models


@pytest.fixture(scope="session")
def eval_batch(builtin):
    from core.data import balanced_subset, to_float

    x, y = builtin.split("test")
    keep = balanced_subset(y, 20)
    return to_float(x[keep]), y[keep]


class Linear(torch.nn.Module):
    """A linear classifier on [N, 3, 2, 2] images, for closed-form checks."""

    def __init__(self, classes: int = 3, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.weight = torch.nn.Parameter(torch.randn(classes, 12, generator=g, dtype=torch.float64))
        self.bias = torch.nn.Parameter(torch.randn(classes, generator=g, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.weight.T + self.bias

    def ce_grad(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Closed form: d CE / dx = W^T (softmax(Wx + b) - onehot(y))."""
        p = torch.softmax(self(x), 1).detach()
        p[torch.arange(len(y)), y] -= 1
        return (p @ self.weight.detach()).view_as(x)


@pytest.fixture
def linear():
    return Linear()


@pytest.fixture
def full_fp32():
    """TF32 (on by default for cuDNN convolutions) would make the GPU differ from the CPU by ~1e-3."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


# The app tests' world (tests/apptest.py): the tiny pair as a zoo, and a cache of each test's own.
@pytest.fixture(scope="session")
def zoo(tmp_path_factory, trained_pair) -> Path:
    """A zoo of the tiny BN / no-BN pair, so the tests never depend on (or race with) checkpoints/."""
    from apptest import PAIR  # (the app's modules load only where an app test runs)
    from core.checkpoints import save_checkpoint

    folder = tmp_path_factory.mktemp("zoo")
    keep = ("dataset", "train_config", "history", "epochs_completed", "final_metrics")
    for name, norm in zip(PAIR, ("none", "bn")):
        ckpt = trained_pair[norm]
        save_checkpoint(ckpt.model, folder / name, {k: ckpt.meta[k] for k in keep if k in ckpt.meta})
    return folder


@pytest.fixture
def cache_dir(tmp_path, monkeypatch, zoo) -> Path:
    monkeypatch.setenv("NORMSCOPE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("NORMSCOPE_ZOO", str(zoo))
    return tmp_path / "cache"
