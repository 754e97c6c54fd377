"""Training: accuracy rises in seconds, history and metadata are complete, resume is exact, cancel is clean."""
from __future__ import annotations

import json
import math
import shutil

import pytest
import torch

from core.progress import Cancelled
from core.train import PRESETS, TrainConfig, learning_rate, preset, read_history, state_path, train

FAST = dict(arch="vgg11", norm="bn", epochs=3, train_subset=2000, probe_per_class=5, probe_steps=2)


@pytest.mark.numerics
def test_tiny_model_learns_and_records_history(tmp_path, builtin):
    meta = train(preset("tiny", **FAST), tmp_path / "m", dataset=builtin)
    history = meta["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert {"train_loss", "test_accuracy", "robust_accuracy", "ligs", "lr", "seconds"} <= history[0].keys()
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["test_accuracy"] > 0.5  # 10 classes: chance is 0.1
    side = json.loads((tmp_path / "m.json").read_text())
    assert side["dataset"] == "builtin" and side["train_config"]["preset"] == "tiny"
    assert side["model"]["arch"] == "vgg11" and side["final_metrics"]["test_accuracy"] == history[-1]["test_accuracy"]
    assert not state_path(tmp_path / "m").exists() and not list(tmp_path.glob("*.state.pt"))


def kill_at_epoch(epoch: int):
    def progress(fraction: float, message: str = "") -> None:
        if message.startswith(f"epoch {epoch}:"):
            raise Cancelled("simulated kill")
    return progress


def test_resume_after_kill_gives_identical_weights(tmp_path, builtin):
    config = preset("tiny", **FAST)
    train(config, tmp_path / "straight", dataset=builtin)
    with pytest.raises(Cancelled):
        train(config, tmp_path / "resumed", dataset=builtin, progress=kill_at_epoch(3))
    assert not (tmp_path / "resumed.safetensors").exists(), "a killed run must leave no checkpoint"
    assert (tmp_path / "resumed.state.pt").exists()
    meta = train(config, tmp_path / "resumed", dataset=builtin)
    from safetensors.torch import load_file
    a, b = load_file(tmp_path / "straight.safetensors"), load_file(tmp_path / "resumed.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert len(meta["history"]) == 3


def test_snapshots_and_adversarial_training(tmp_path, builtin):
    from core.train import ADVERSARIAL_TRAINING
    config = preset("tiny", **{**FAST, "epochs": 2, "snapshot_every": 1, "adversarial": ADVERSARIAL_TRAINING,
                               "train_subset": 500})
    meta = train(config, tmp_path / "adv", dataset=builtin)
    snaps = sorted((tmp_path / "snapshots" / "adv").glob("*.safetensors"))
    assert [p.stem for p in snaps] == ["epoch_001", "epoch_002"]
    assert meta["train_config"]["adversarial"]["eps"] == 0.5


def test_schedules_follow_their_definitions():
    step = preset("paper")
    assert learning_rate(step, 0) == 0.01 and learning_rate(step, 199.9) == 0.01
    assert learning_rate(step, 200) == pytest.approx(0.001)
    cycle = preset("cpu", epochs=10)
    assert learning_rate(cycle, 0) == 0 and learning_rate(cycle, 1.5) == pytest.approx(cycle.lr)
    assert learning_rate(cycle, 10) == 0


def test_paper_preset_is_table_a1():
    p = preset("paper")
    assert (p.lr, p.momentum, p.weight_decay, p.batch_size, p.epochs, p.milestones, p.gamma) == \
        (0.01, 0.9, 5e-4, 128, 300, (200,), 0.1)
    adv = preset("paper_adv").adversarial
    assert (adv.name, adv.eps, adv.step_size, adv.steps) == ("pgd_l2", 0.5, 0.1, 7)


def test_history_is_readable_from_the_state_mid_run_and_from_the_json_after(tmp_path, builtin):
    config = preset("tiny", **{**FAST, "train_subset": 500})
    assert read_history(tmp_path / "m") == []
    with pytest.raises(Cancelled):
        train(config, tmp_path / "m", dataset=builtin, progress=kill_at_epoch(3))
    assert [h["epoch"] for h in read_history(tmp_path / "m")] == [1, 2]
    meta = train(config, tmp_path / "m", dataset=builtin)
    assert not state_path(tmp_path / "m").exists() and read_history(tmp_path / "m") == meta["history"]
    state_path(tmp_path / "other").write_bytes(b"half a file")
    assert read_history(tmp_path / "other") == []


@pytest.mark.parametrize("field, value", [("epochs", 0), ("epochs", -3), ("batch_size", 0), ("lr", 0.0),
                                          ("lr", -0.1), ("lr", float("nan")), ("width", 0.0),
                                          ("probe_per_class", 0), ("probe_every", 0), ("schedule", "cosine")])
def test_train_config_refuses_meaningless_values(field, value):
    """``train --epochs 0`` used to save an untrained checkpoint with empty metrics as if it were a result."""
    with pytest.raises(ValueError, match=field if field != "schedule" else "unknown schedule"):
        preset("tiny", **{field: value})
    with pytest.raises(ValueError):
        TrainConfig.from_dict({**TrainConfig().to_dict(), field: value})


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_are_valid_and_round_trip(name):
    config = preset(name)
    assert TrainConfig.from_dict(config.to_dict()) == config


def test_training_on_a_missing_gpu_fails_before_writing(tmp_path, builtin, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA was asked for but is not available"):
        train(preset("tiny", **FAST), tmp_path / "m", dataset=builtin, device="cuda")
    assert not list(tmp_path.iterdir())


def reference_augment(x: torch.Tensor, g: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Crop and flip one image at a time, with the generator's draws in the trainer's order."""
    n, _, h, w = x.shape
    oy, ox = (torch.randint(0, 2 * pad + 1, (n,), generator=g) for _ in range(2))
    flip = torch.rand(n, generator=g) < 0.5
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    crops = [padded[i, :, oy[i]:oy[i] + h, ox[i]:ox[i] + w] for i in range(n)]
    return torch.stack([c.flip(-1) if f else c for c, f in zip(crops, flip)])


def test_batched_augmentation_equals_crop_and_flip_per_image():
    from core.train import augment

    x = torch.randint(0, 256, (64, 3, 8, 8), dtype=torch.uint8)
    ours, reference = augment(x, torch.Generator().manual_seed(5)), reference_augment(x, torch.Generator().manual_seed(5))
    assert torch.equal(ours, reference)


@pytest.mark.numerics
def test_bf16_training_learns_and_records_its_precision(tmp_path, builtin):
    meta = train(preset("tiny", **{**FAST, "epochs": 2}, precision="bf16"), tmp_path / "bf16", dataset=builtin)
    assert meta["train_config"]["precision"] == "bf16" and meta["history"][-1]["test_accuracy"] > 0.3
    fp32 = preset("tiny", **FAST).to_dict()
    assert "precision" not in fp32 and "compile" not in fp32  # the zoo's records, made before the options


@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None,
                    reason="torch.compile's CPU backend needs a C++ compiler")
def test_gpu_preset_runs_two_steps_on_the_builtin_data(tmp_path, builtin):
    """The full-width preset as it is (bf16, compiled), cut to two steps of a small model for the CPU."""
    config = preset("gpu", dataset="builtin", arch="vgg11", width=0.125, epochs=1, train_subset=256,
                    probe_per_class=2, probe_steps=1)
    assert (config.precision, config.compile, config.batch_size) == ("bf16", True, 128)
    meta = train(config, tmp_path / "gpu", dataset=builtin, device="cpu")
    record = meta["history"][0]
    assert math.isfinite(record["train_loss"]) and meta["train_config"]["compile"] is True
    assert (tmp_path / "gpu.safetensors").is_file()


def test_gpu_zoo_plan_is_the_full_width_pairs_and_fits_the_shipping_limit():
    from core.models import ModelSpec, build_from_spec
    from core.zoo import GPU_PLAN

    assert {(e.config.arch, e.config.norm) for e in GPU_PLAN} == {(a, n) for a in ("resnet18", "vgg16")
                                                                 for n in ("bn", "none")}
    assert all(e.config.width == 1.0 and e.config.preset == "gpu" and e.config.epochs <= 40 for e in GPU_PLAN)
    resnet18 = build_from_spec(ModelSpec("resnet18", "bn", 10, 1.0))
    assert 2 * sum(p.numel() for p in resnet18.parameters()) < 25 * 2 ** 20  # fp16 weights under 25 MB


def test_deterministic_kernels_change_nothing_on_the_cpu_and_are_restored(tmp_path, builtin):
    config = preset("tiny", **{**FAST, "epochs": 1, "train_subset": 512})
    train(config, tmp_path / "plain", dataset=builtin)
    before = torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark
    meta = train(preset("tiny", **{**FAST, "epochs": 1, "train_subset": 512}, deterministic=True),
                 tmp_path / "det", dataset=builtin)
    assert (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark) == before
    assert meta["train_config"]["deterministic"] is True
    from safetensors.torch import load_file
    a, b = load_file(tmp_path / "plain.safetensors"), load_file(tmp_path / "det.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)  # the CPU's kernels were deterministic already
