"""Every core path on a device, against its CPU result under the same seed: the attacks (models, images and labels
on either device), training and resume, every registered experiment, and the optimization landscape.

The ``cuda`` cases skip without a GPU; on a GPU machine ``pytest -m cuda`` shows at once what works there. The
``cpu`` cases run in the normal suite, so each path is also checked against a second CPU run. Tolerances allow
float rounding (a sample on a decision boundary may flip), never a different computation: "a few samples" is
:data:`SAMPLES` images of the ones evaluated.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.attacks import attack_entry, build_attack, paper_spec
from core.cache import ResultCache
from core.checkpoints import load_checkpoint
from core.corruptions import CorruptionConfig, corruption_cell
from core.data import balanced_subset
from core.device import to_device
from core.experiments import EvalData, RunContext, registry
from core.features import (FeatureDataset, FeatureTrainingConfig, RelianceConfig, conflict_reliance_report,
                           feature_config, feature_dataset, feature_train_config, feature_training,
                           load_feature_dataset)
from core.frequency import FourierConfig, SpectrumConfig, fourier_heatmap, perturbation_spectrum
from core.gallery import GalleryConfig, gallery_report
from core.images import decode_images
from core.landscape import landscape_step, rng_state
from core.surface import LossSurfaceConfig, loss_surface
from core.metrics import LIGSSpec, ligs, run_attack
from core.models import build
from core.progress import Cancelled
from core.records import Record
from core.robustness import AutoAttackConfig, LIGSConfig, RobustnessConfig, autoattack, ligs_report, robustness
from core.train import preset, read_history, state_path, train
from core.transfer import TransferConfig, transfer_examples, transfer_matrix

NEEDS_CUDA = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]
DEVICES = ["cpu", pytest.param("cuda", marks=NEEDS_CUDA)]
CUDA_ONLY = [pytest.param("cuda", marks=NEEDS_CUDA)]
SAMPLES = 2  # how many evaluated images may land on the other side of a decision boundary through rounding


pytestmark = pytest.mark.usefixtures("full_fp32")  # conftest: TF32 off, so the GPU can match the CPU


@pytest.fixture(scope="module")
def pair_paths(trained_pair) -> dict[str, Path]:
    return {norm: checkpoint.path for norm, checkpoint in trained_pair.items()}


def fresh_pair(paths: dict[str, Path]) -> dict:
    """The tiny BN / no-BN checkpoints loaded anew: experiments move a checkpoint's model to their device, and the
    session's shared models must stay on the CPU."""
    return {norm: load_checkpoint(path) for norm, path in paths.items()}


def reference(compute: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A memo of CPU results by key, so that every device case of one path compares with one CPU run."""
    memo: dict[Any, Any] = {}

    def get(key):
        if key not in memo:
            memo[key] = compute(key)
        return memo[key]
    return get


def within_samples(got: float, want: float, n: int, samples: int = SAMPLES) -> bool:
    return abs(got - want) <= samples / max(n, 1) + 1e-9


def mismatches(a, b) -> int:
    return sum(x != y for x, y in zip(a, b, strict=True))


# --- attacks -----------------------------------------------------------------------------------------------------

# pgd_l2 is test_cuda.py's; every other attack the pages and the trainer use, at 3 steps.
OTHER_ATTACKS = ("fgsm", "pgd_linf", "cw_l2", "cw_linf", "ifgsm", "mifgsm", "difgsm", "tifgsm", "apgd_ce_linf",
                 "apgd_dlr_linf", "apgd_t_l2")


def few_steps(name: str):
    spec = paper_spec(name)
    return replace(spec, steps=min(spec.steps, 3)) if attack_entry(name).iterative else spec


def distance(a: torch.Tensor, b: torch.Tensor, threat: str) -> torch.Tensor:
    """Per image, ``||a - b||`` in the threat model."""
    return (a - b).flatten(1).norm(p=2 if threat == "l2" else math.inf, dim=1)


def discrepancy(a: torch.Tensor, b: torch.Tensor, threat: str) -> float:
    """How far apart two sets of adversarial images are: the mean l2 distance per image (l2 attacks), or the mean
    absolute difference per pixel (linf attacks, where one flipped gradient sign moves a pixel by two steps and
    every image's linf distance would be that)."""
    return (distance(a, b, "l2").mean() if threat == "l2" else (a - b).abs().mean()).item()


# Same attack, images computed apart by rounding, as a fraction of eps. Calibrated on the CPU against a float64
# twin of the tiny models (3 steps): at most 0.03 eps, APGD-DLR 0.14 (APGD picks each image's next point by
# comparing losses, so a rounding tie sends an image down another path); another seed is 0.4-1.2 eps away.
SAME_IMAGES = 0.1
SAME_IMAGES_APGD = 0.3


@pytest.fixture(scope="module")
def attack_batch(eval_batch):
    x, y = eval_batch
    keep = balanced_subset(y, 10)
    return x[keep], y[keep]


@pytest.fixture(scope="module")
def cpu_attacks(pair_paths, attack_batch):
    """Per (model, attack name): the CPU's adversarial images and its run_attack result."""
    x, y = attack_batch

    def compute(key: tuple[str, str]):
        norm, name = key
        model, spec = fresh_pair(pair_paths)[norm].model, few_steps(name)
        return build_attack(model, spec)(x, y), run_attack(model, x, y, spec)
    return reference(compute)


@pytest.mark.parametrize("name", OTHER_ATTACKS)
@pytest.mark.parametrize("norm", ["bn", "none"])
@pytest.mark.parametrize("model_device", DEVICES)
@pytest.mark.parametrize("data_device", DEVICES)
def test_attack_on_a_device_equals_its_cpu_result(pair_paths, attack_batch, cpu_attacks, name, norm, model_device,
                                                  data_device):
    x, y = attack_batch
    spec, threat = few_steps(name), attack_entry(name).threat
    expected_images, expected = cpu_attacks((norm, name))
    model = fresh_pair(pair_paths)[norm].model.to(model_device)
    images = build_attack(model, spec)(x.to(data_device), y.to(data_device))
    assert images.device.type == data_device and images.shape == x.shape and images.dtype == x.dtype
    images = images.cpu()
    for adversarial in (images, expected_images):  # the budget holds on both devices
        assert (distance(adversarial, x, threat) <= spec.eps + 1e-5).all()
        assert adversarial.min() >= 0 and adversarial.max() <= 1
    result = run_attack(model, x.to(data_device), y.to(data_device), spec)
    assert result.clean_correct.device.type == "cpu" and result.robust_correct.device.type == "cpu"
    assert mismatches(result.clean_correct.tolist(), expected.clean_correct.tolist()) <= SAMPLES
    same = SAME_IMAGES_APGD if name.startswith("apgd") else SAME_IMAGES
    assert discrepancy(images, expected_images, threat) <= same * spec.eps
    assert mismatches(result.robust_correct.tolist(), expected.robust_correct.tolist()) <= SAMPLES
    # an exactly zero gradient is a saturated fp32 softmax (or DLR), which rounding decides on borderline images
    assert within_samples(result.zero_gradient, expected.zero_gradient, result.n, 2 * SAMPLES)


RANDOM_SPECS = {"pgd_linf-random-start": paper_spec("pgd_linf", steps=2, random_start=True),
                "pgd_l2-random-start": paper_spec("pgd_l2", steps=2, random_start=True),
                "difgsm": paper_spec("difgsm", steps=2)}


@pytest.mark.parametrize("spec", RANDOM_SPECS.values(), ids=RANDOM_SPECS.keys())
@pytest.mark.parametrize("device", DEVICES)
def test_seeded_random_draws_do_not_depend_on_the_device(pair_paths, attack_batch, spec, device):
    """Same seed, same images on every device: every attack draws on the CPU (2 steps on the BN model: a float64
    twin lands within 0.02 eps of the CPU's images, another seed 0.5-1.1 eps away)."""
    x, y = attack_batch
    model = fresh_pair(pair_paths)["bn"].model
    expected = build_attack(model, spec)(x, y)
    images = build_attack(model.to(device), spec)(x.to(device), y.to(device)).cpu()
    assert discrepancy(images, expected, spec.entry.threat) <= SAME_IMAGES * spec.eps


@pytest.mark.parametrize("name", ["pgd_l2", "pgd_linf", "apgd_ce_linf"])
@pytest.mark.parametrize("norm", ["bn", "none"])
@pytest.mark.parametrize("device", DEVICES)
def test_bf16_attack_on_a_device_is_near_the_fp32_cpu_result(pair_paths, attack_batch, cpu_attacks, name, norm,
                                                             device):
    """bf16 autocast rounds the gradient's direction only: fp32 images in the ball, accuracy near fp32's (on the
    CPU, 3 steps: at most 2 of 100 images differ)."""
    x, y = attack_batch
    spec, threat = replace(few_steps(name), precision="bf16"), attack_entry(name).threat
    _, expected = cpu_attacks((norm, name))
    model = fresh_pair(pair_paths)[norm].model.to(device)
    images = build_attack(model, spec)(x.to(device), y.to(device))
    assert images.dtype == torch.float32 and images.device.type == device
    assert (distance(images.cpu(), x, threat) <= spec.eps + 1e-5).all()
    result = run_attack(model, x, y, spec)
    assert mismatches(result.clean_correct.tolist(), expected.clean_correct.tolist()) <= SAMPLES
    assert abs(result.robust_accuracy - expected.robust_accuracy) <= 0.05


@pytest.mark.parametrize("norm", ["bn", "none"])
@pytest.mark.parametrize("device", DEVICES)
def test_bf16_ligs_on_a_device_is_near_the_fp32_cpu_result(pair_paths, attack_batch, norm, device):
    x, y = attack_batch
    model = fresh_pair(pair_paths)[norm].model
    expected = ligs(model, x, y, LIGSSpec())
    result = ligs(model.to(device), x.to(device), y.to(device), LIGSSpec(precision="bf16"))
    assert result.per_sample.device.type == "cpu" and result.per_sample.dtype == torch.float32
    assert abs(result.mean - expected.mean) <= 0.02  # on the CPU: 0.002 apart


# --- training and resume ---------------------------------------------------------------------------------------

# Two epochs of two full batches; every step also measures the optimization landscape (the trainer's RNG and
# gradient hand-over on the device).
TRAIN = dict(arch="vgg11", norm="bn", epochs=2, train_subset=256, probe_per_class=5, probe_steps=2, landscape_every=1)


@pytest.fixture(scope="module")
def cpu_training(tmp_path_factory, builtin):
    out = tmp_path_factory.mktemp("cpu-training") / "m"
    return train(preset("tiny", **TRAIN), out, device="cpu", dataset=builtin), out


def state_dict_of(out: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(out.with_name(out.name + ".safetensors")).model.state_dict()


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], exact: bool) -> bool:
    """Bit-identical (same device), else within 1 % of the weights' norm (a few SGD steps of rounding apart)."""
    assert a.keys() == b.keys()
    if exact:
        return all(torch.equal(a[k], b[k]) for k in a)
    floats = [k for k in a if a[k].is_floating_point()]
    diff = torch.stack([(a[k].double() - b[k].double()).norm() for k in floats]).norm()
    size = torch.stack([b[k].double().norm() for k in floats]).norm()
    return bool(diff <= 1e-2 * size) and all(torch.equal(a[k], b[k]) for k in a if k not in floats)


@pytest.mark.parametrize("device", DEVICES)
def test_training_on_a_device_matches_the_cpu_run(tmp_path, builtin, cpu_training, device):
    expected, expected_out = cpu_training
    meta = train(preset("tiny", **TRAIN), tmp_path / "m", device=device, dataset=builtin)
    assert (tmp_path / "m.safetensors").is_file() and (tmp_path / "m.json").is_file()
    assert not state_path(tmp_path / "m").exists()
    history = meta["history"]
    assert [h["epoch"] for h in history] == [1, 2]
    for h, e in zip(history, expected["history"], strict=True):
        assert {"train_loss", "train_accuracy", "test_accuracy", "robust_accuracy", "ligs", "lr", "seconds",
                "conflict_robust", "conflict_non_robust", "landscape"} <= h.keys()
        assert math.isfinite(h["train_loss"]) and h["train_loss"] == pytest.approx(e["train_loss"], rel=0.1)
        assert h["lr"] == e["lr"]
        for key in ("train_accuracy", "test_accuracy", "robust_accuracy", "conflict_robust"):
            assert abs(h[key] - e[key]) <= 0.15, key
        assert abs(h["ligs"] - e["ligs"]) <= 0.05
        assert [r["step"] for r in h["landscape"]] == [r["step"] for r in e["landscape"]]
        for r, s in zip(h["landscape"], e["landscape"]):
            assert all(math.isfinite(v) for v in r.values())
            assert r["loss"] == pytest.approx(s["loss"], rel=0.1)
            assert r["grad_norm"] == pytest.approx(s["grad_norm"], rel=0.1)
    assert meta["final_metrics"].keys() == expected["final_metrics"].keys()
    checkpoint = load_checkpoint(tmp_path / "m.safetensors")
    assert next(checkpoint.model.parameters()).device.type == "cpu"
    assert same_weights(checkpoint.model.state_dict(), state_dict_of(expected_out), exact=device == "cpu")


def kill_at_epoch(epoch: int):
    def progress(fraction: float, message: str = "") -> None:
        if message.startswith(f"epoch {epoch}:"):
            raise Cancelled("simulated kill")
    return progress


@pytest.mark.parametrize("resume_device", DEVICES)
@pytest.mark.parametrize("kill_device", DEVICES)
def test_a_killed_run_resumes_on_a_device(tmp_path, builtin, cpu_training, kill_device, resume_device):
    """Killed in epoch 2 on one device, resumed from its state on another (or the same): it continues at epoch 2
    and ends where an uninterrupted CPU run does (bit-identical on the CPU)."""
    config, out = preset("tiny", **TRAIN), tmp_path / "m"
    with pytest.raises(Cancelled):
        train(config, out, device=kill_device, dataset=builtin, progress=kill_at_epoch(2))
    assert state_path(out).exists() and not (tmp_path / "m.safetensors").exists()
    before = read_history(out)
    assert [h["epoch"] for h in before] == [1]
    messages = []
    meta = train(config, out, device=resume_device, dataset=builtin, progress=lambda f, m="": messages.append(m))
    assert not any(m.startswith("epoch 1:") for m in messages) and any(m.startswith("epoch 2:") for m in messages)
    assert meta["history"][0] == before[0] and [h["epoch"] for h in meta["history"]] == [1, 2]
    assert not state_path(out).exists()
    expected, expected_out = cpu_training
    assert abs(meta["history"][1]["test_accuracy"] - expected["history"][1]["test_accuracy"]) <= 0.15
    assert same_weights(state_dict_of(out), state_dict_of(expected_out),
                        exact=kill_device == resume_device == "cpu")


@pytest.mark.parametrize("device", CUDA_ONLY)  # test_train.py runs it on the CPU (where compiling takes a while)
def test_gpu_preset_trains_on_a_device(tmp_path, builtin, device):
    """The gpu preset as it is (bf16 autocast, torch.compile with CUDA graphs), cut to a small model and two
    steps, against the same run in fp32, uncompiled, on the CPU."""
    config = preset("gpu", dataset="builtin", arch="vgg11", width=0.125, epochs=1, train_subset=256,
                    probe_per_class=2, probe_steps=1)
    assert (config.precision, config.compile) == ("bf16", True)
    meta = train(config, tmp_path / "gpu", dataset=builtin, device=device)
    expected = train(replace(config, precision="fp32", compile=False), tmp_path / "cpu", dataset=builtin,
                     device="cpu")
    assert (tmp_path / "gpu.safetensors").is_file() and not state_path(tmp_path / "gpu").exists()
    assert meta["train_config"]["precision"] == "bf16" and meta["train_config"]["compile"] is True
    record, reference_record = meta["history"][0], expected["history"][0]
    assert math.isfinite(record["train_loss"])
    assert record["train_loss"] == pytest.approx(reference_record["train_loss"], rel=0.1)
    weights = load_checkpoint(tmp_path / "gpu.safetensors").model.state_dict()
    assert all(torch.isfinite(t).all() for t in weights.values() if t.is_floating_point())


# --- the registered experiments ----------------------------------------------------------------------------------

DATA = EvalData("builtin", "test", 5)  # 50 images
FEATURE_DATA = EvalData("builtin", "train", 2)  # 20 images


@dataclass(frozen=True)
class Case:
    """An experiment path: ``run(checkpoints, run_context) -> result``, and ``compare(device result, CPU result)``
    asserting they agree; ``covers`` names the registered experiments it runs."""

    covers: tuple[str, ...]
    run: Callable[[dict, RunContext], Record | dict]
    compare: Callable[[Record | dict, Record | dict], None]


def compare_robustness(got: Record, want: Record) -> None:
    n = want.n
    assert got.n == n and got.attack == want.attack
    for key in ("clean_accuracy", "robust_accuracy", "zero_gradient"):
        assert within_samples(getattr(got, key), getattr(want, key), n), key
    assert (got.target_success is None) == (want.target_success is None)
    if want.target_success is not None:
        assert within_samples(got.target_success, want.target_success, n)
    assert mismatches(got.robust_correct, want.robust_correct) <= SAMPLES


def compare_ligs(got: Record, want: Record) -> None:
    assert got.labels == want.labels and got.n == want.n
    assert abs(got.ligs - want.ligs) <= 1e-2 and abs(got.logit_similarity - want.logit_similarity) <= 1e-3
    assert np.allclose(got.per_class, want.per_class, atol=1e-2)
    assert np.abs(np.subtract(got.per_sample, want.per_sample)).mean() <= 1e-2


def compare_autoattack(got: Record, want: Record) -> None:
    n = want.n
    assert got.n == n and got.per_attack.keys() == want.per_attack.keys()
    assert within_samples(got.clean_accuracy, want.clean_accuracy, n)
    assert within_samples(got.robust_accuracy, want.robust_accuracy, n)
    assert all(within_samples(got.per_attack[a], want.per_attack[a], n) for a in want.per_attack)
    assert mismatches(got.robust_correct, want.robust_correct) <= SAMPLES


def compare_gallery(got: Record, want: Record, eps: float) -> None:
    assert got.labels == want.labels
    assert np.array_equal(decode_images(got.clean), decode_images(want.clean))
    assert max(got.linf) <= eps + 1e-6 and max(want.linf) <= eps + 1e-6
    assert mismatches(got.clean_pred, want.clean_pred) <= SAMPLES
    assert mismatches(got.adv_pred, want.adv_pred) <= SAMPLES
    assert np.allclose(got.clean_conf, want.clean_conf, atol=1e-3)
    adversarial = [decode_images(r.adversarial).astype(np.int16) for r in (got, want)]
    assert np.abs(adversarial[0] - adversarial[1]).mean() <= 0.1 * eps * 255


def run_transfer(pair: dict, run: RunContext) -> dict:
    models, attack = [pair["none"], pair["bn"]], paper_spec("ifgsm", steps=3)
    matrix = transfer_matrix(models, models, attack, DATA, run)
    examples = [transfer_examples(m, TransferConfig(attack, matrix.data), replace(run, cached_only=True))
                for m in models]
    return {"cells": {f"{i}{j}": cell for (i, j), cell in matrix.cells.items()}, "missing": matrix.missing,
            "white_box": sorted(matrix.white_box), "examples": examples}


def compare_transfer(got: dict, want: dict) -> None:
    assert got["missing"] == want["missing"] == 0 and got["white_box"] == want["white_box"]
    assert got["cells"].keys() == want["cells"].keys()
    for key, cell in want["cells"].items():
        other = got["cells"][key]
        assert other.n_images == cell.n_images and abs(other.n - cell.n) <= SAMPLES
        assert mismatches(other.adv_pred, cell.adv_pred) <= SAMPLES
        assert within_samples(other.error_rate, cell.error_rate, cell.n_images)
        assert within_samples(other.success_rate, cell.success_rate, cell.n, 2 * SAMPLES)
    for g, w in zip(got["examples"], want["examples"], strict=True):
        assert g.labels == w.labels and g.linf <= 8 / 255 + 1e-6 and w.linf <= 8 / 255 + 1e-6
        assert mismatches(g.source_pred, w.source_pred) <= SAMPLES
        images = [decode_images(e.adversarial).astype(np.int16) for e in (g, w)]
        assert np.abs(images[0] - images[1]).mean() <= 0.1 * 8


def compare_surface(got: Record, want: Record) -> None:
    for key in ("image_index", "label", "axes", "coords", "image"):
        assert getattr(got, key) == getattr(want, key), key
    assert np.allclose(got.loss, want.loss, rtol=1e-3, atol=1e-4)
    assert mismatches(np.ravel(got.pred).tolist(), np.ravel(want.pred).tolist()) <= SAMPLES
    assert got.centre_pred == want.centre_pred
    assert got.centre_loss == pytest.approx(want.centre_loss, rel=1e-3, abs=1e-5)
    assert got.gradient_norm == pytest.approx(want.gradient_norm, rel=1e-3)
    assert abs(got.ligs - want.ligs) <= 1e-2


def run_features(kind: str) -> Callable[[dict, RunContext], dict]:
    def run(pair: dict, run: RunContext) -> dict:
        result = feature_dataset(pair["bn"], feature_config(kind, "tiny", steps=3, data=FEATURE_DATA), run)
        data = load_feature_dataset(result.id)  # the images on disk, under this run's NORMSCOPE_CACHE
        return {"record": result, "stored": {s: data.split(s) for s in data.splits if s != "test"}}
    return run


def compare_features(got: dict, want: dict) -> None:
    compare_feature_records(got["record"], want["record"])
    assert got["stored"].keys() == want["stored"].keys()
    for split, (x, y) in want["stored"].items():
        other_x, other_y = got["stored"][split]
        assert torch.equal(other_y, y) and other_x.dtype == x.dtype == torch.float16
        assert (other_x.float() - x.float()).abs().mean() <= 2e-3, split


def compare_feature_records(got: FeatureDataset, want: FeatureDataset) -> None:
    assert got.id == want.id and got.images == want.images and got.kind == want.kind
    assert got.preview["labels"] == want.preview["labels"]
    assert got.preview["targets"] == want.preview["targets"]
    for key, value in want.sanity.items():  # relative distances (Eq. A2) or the target rate (attacks)
        assert np.allclose(got.sanity[key], value, atol=SAMPLES / want.images), key
    assert got.checkpoint == want.checkpoint and got.config == want.config


def run_feature_training(pair: dict, run: RunContext) -> dict:
    config = FeatureTrainingConfig(feature_config("D_det", "tiny", steps=3, data=FEATURE_DATA),
                                   feature_train_config("D_det", "vgg11", "bn", "tiny", epochs=1, probe_per_class=2,
                                                        probe_steps=1))
    return feature_training(pair["bn"], config, run)


def compare_feature_training(got: Record, want: Record) -> None:
    assert got.dataset_id == want.dataset_id and got.test_images == want.test_images
    assert len(got.history) == len(want.history) == 1
    assert math.isfinite(got.history[0]["train_loss"])
    assert got.history[0]["train_loss"] == pytest.approx(want.history[0]["train_loss"], rel=0.05)
    assert abs(got.test_accuracy - want.test_accuracy) <= 0.01  # 2000 test images, after 1 SGD step


def compare_reliance(got: Record, want: Record) -> None:
    assert got.n == want.n
    assert within_samples(got.robust, want.robust, want.n)
    assert within_samples(got.non_robust, want.non_robust, want.n)


def compare_corruption(got: Record, want: Record) -> None:
    assert got.n == want.n and (got.corruption, got.severity) == (want.corruption, want.severity)
    assert within_samples(got.accuracy, want.accuracy, want.n)
    assert within_samples(got.clean_accuracy, want.clean_accuracy, want.n)


def compare_fourier(got: Record, want: Record) -> None:
    assert got.n == want.n and got.frequencies == want.frequencies
    assert np.abs(np.subtract(got.error, want.error)).max() <= SAMPLES / want.n
    assert within_samples(got.clean_error, want.clean_error, want.n)


def compare_spectrum(got: Record, want: Record) -> None:
    assert got.n == want.n and got.attack == want.attack
    assert abs(got.high_frequency_share - want.high_frequency_share) <= 0.02
    assert got.l2 == pytest.approx(want.l2, rel=0.02)
    assert np.abs(np.subtract(got.spectrum, want.spectrum)).mean() <= 0.05 * np.mean(want.spectrum)


GALLERY_EPS = 4 / 255
CASES = {
    "robustness": Case(("robustness",), lambda pair, run: robustness(
        pair["bn"], RobustnessConfig(paper_spec("pgd_linf", steps=3), DATA), run), compare_robustness),
    "robustness-targeted": Case(("robustness",), lambda pair, run: robustness(
        pair["none"], RobustnessConfig(paper_spec("cw_l2", steps=3, target="next"), DATA), run), compare_robustness),
    "ligs": Case(("ligs",), lambda pair, run: ligs_report(pair["none"], LIGSConfig(LIGSSpec(), DATA), run),
                 compare_ligs),
    "ligs-pgd": Case(("ligs",), lambda pair, run: ligs_report(
        pair["bn"], LIGSConfig(LIGSSpec("pgd", 0.01, steps=2), DATA), run), compare_ligs),
    "autoattack": Case(("autoattack", "robustness"), lambda pair, run: autoattack(
        pair["bn"], AutoAttackConfig("linf", steps=2, data=DATA), run), compare_autoattack),
    "gallery": Case(("gallery",), lambda pair, run: gallery_report(
        pair["bn"], GalleryConfig(paper_spec("pgd_linf", eps=GALLERY_EPS, steps=3)), run),
        lambda got, want: compare_gallery(got, want, GALLERY_EPS)),
    "transfer": Case(("transfer_examples", "transfer"), run_transfer, compare_transfer),
    "loss_surface": Case(("loss_surface",), lambda pair, run: loss_surface(
        pair["none"], LossSurfaceConfig(image=7, resolution=5, data=EvalData("builtin")), run), compare_surface),
    "feature_dataset-D_NR": Case(("feature_dataset",), run_features("D_NR"), compare_features),
    "feature_dataset-D_det": Case(("feature_dataset",), run_features("D_det"), compare_features),
    "feature_training": Case(("feature_training", "feature_dataset"), run_feature_training, compare_feature_training),
    "conflict_reliance": Case(("conflict_reliance",), lambda pair, run: conflict_reliance_report(
        pair["bn"], RelianceConfig(EvalData("builtin", "conflict", 5)), run), compare_reliance),
    "corruption-noise": Case(("corruption",), lambda pair, run: corruption_cell(
        pair["bn"], CorruptionConfig("gaussian_noise", 3, DATA), run), compare_corruption),
    "corruption-fog": Case(("corruption",), lambda pair, run: corruption_cell(
        pair["none"], CorruptionConfig("fog", 5, DATA), run), compare_corruption),
    "fourier_heatmap": Case(("fourier_heatmap",), lambda pair, run: fourier_heatmap(
        pair["bn"], FourierConfig(data=DATA), run), compare_fourier),
    "perturbation_spectrum": Case(("perturbation_spectrum",), lambda pair, run: perturbation_spectrum(
        pair["none"], SpectrumConfig(paper_spec("pgd_l2", steps=3), DATA), run), compare_spectrum),
}


def run_case(name: str, paths: dict[str, Path], device: str, home: Path) -> dict:
    """Case ``name`` on ``device`` with its own result cache and feature folder under ``home`` (cache keys do not
    name the device, so the CPU's results must not be found by the device's run)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NORMSCOPE_CACHE", str(home))
        return CASES[name].run(fresh_pair(paths), RunContext(cache=ResultCache(home), device=device))


@pytest.fixture(scope="module")
def cpu_experiments(pair_paths, tmp_path_factory):
    return reference(lambda name: run_case(name, pair_paths, "cpu", tmp_path_factory.mktemp(f"cpu-{name}")))


def test_every_registered_experiment_runs_on_a_device_here():
    """A new experiment joins :data:`CASES`, so that ``pytest -m cuda`` covers it too."""
    assert set(registry()) == {name for case in CASES.values() for name in case.covers}


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("device", DEVICES)
def test_experiment_on_a_device_equals_its_cpu_result(pair_paths, cpu_experiments, tmp_path, name, device):
    got = run_case(name, pair_paths, device, tmp_path)
    want = cpu_experiments(name)
    CASES[name].compare(got, want)
    if isinstance(want, Record):
        assert got.checkpoint == want.checkpoint and got.config == want.config


# --- the optimization landscape ----------------------------------------------------------------------------------

ETAS = (0.05, 0.2, 1.0)


@pytest.mark.parametrize("given_gradient", [False, True], ids=["computed", "given"])
@pytest.mark.parametrize("norm", ["bn", "none"])
@pytest.mark.parametrize("device", DEVICES)
def test_landscape_step_on_a_device_equals_its_cpu_result(eval_batch, device, norm, given_gradient):
    torch.manual_seed(0)
    model = build("vgg11", norm=norm, width=0.125).train()  # batch statistics, as in the trainer
    twin, place = copy.deepcopy(model).to(device), torch.device(device)
    x, y = eval_batch[0][::4][:32], eval_batch[1][::4][:32]
    xd, yd = to_device(x, place), y.to(place)
    F.cross_entropy(model(x), y).backward()  # the trainer's p.grad (and a BN statistics update), on both
    F.cross_entropy(twin(xd), yd).backward()
    expected = landscape_step(model, lambda: F.cross_entropy(model(x), y), ETAS,
                              [p.grad for p in model.parameters()] if given_gradient else None)
    before = [t.detach().clone() for t in (*twin.parameters(), *twin.buffers(), *(p.grad for p in twin.parameters()))]
    rng = rng_state(place)
    step = landscape_step(twin, lambda: F.cross_entropy(twin(xd), yd), ETAS,
                          [p.grad for p in twin.parameters()] if given_gradient else None, rng)
    after = [t.detach() for t in (*twin.parameters(), *twin.buffers(), *(p.grad for p in twin.parameters()))]
    assert all(a.device.type == device and torch.equal(a, b) for a, b in zip(after, before, strict=True))
    assert twin.training and torch.equal(torch.get_rng_state(), rng[0])
    if device == "cuda":
        assert torch.equal(torch.cuda.get_rng_state(place), rng[1])
    assert step.etas == expected.etas
    assert step.loss == pytest.approx(expected.loss, rel=1e-4)
    assert step.grad_norm == pytest.approx(expected.grad_norm, rel=1e-3)
    assert step.losses == pytest.approx(expected.losses, rel=1e-3)
    assert step.grad_changes == pytest.approx(expected.grad_changes, rel=1e-2)
    assert step.beta == pytest.approx(expected.beta, rel=1e-2) and step.beta > 0


@pytest.mark.parametrize("device", DEVICES)
def test_deterministic_training_repeats_exactly_on_a_device(tmp_path, builtin, device):
    """``deterministic=True``: two runs of one seed give the same weights on each device (on the CPU without it)."""
    from safetensors.torch import load_file

    config = preset("tiny", **TRAIN, deterministic=True)
    for run in ("a", "b"):
        train(config, tmp_path / run, device=device, dataset=builtin)
    a, b = load_file(tmp_path / "a.safetensors"), load_file(tmp_path / "b.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
