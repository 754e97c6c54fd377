"""core.corruptions: each corruption's defining property at the CIFAR-10-C parameters, identity parameters,
seeding, the cached image sets, the published arrays as a source, bad input, and the sweep's summary."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core.cache import ResultCache
from core.corruptions import (CORRUPTIONS, NOT_PROVIDED, CorruptionConfig, corrupt, corruption_cell,
                              corruption_sweep, load_cifar10c, quantized, summary)
from core.corruptions.evaluation import CorruptionCell, corrupted_dir
from core.corruptions.transforms import (brightness, contrast, defocus_blur, fog, gaussian_blur, gaussian_noise,
                                         saturate, zoom_blur)
from core.data import DataError, load_dataset, to_float
from core.experiments import EvalData, RunContext

DATA = EvalData("builtin", "test", 3)
# The CIFAR-10-C parameters do not order these two by distance: glass blur's severities trade blur for pixel
# swaps, saturate's go from desaturated (1, 2) to oversaturated (3-5). Their own orders are checked below.
UNORDERED = {"glass_blur", "saturate"}


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return to_float(load_dataset("builtin").split("test")[0][:64])


def distance(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).flatten(1).norm(dim=1).mean().item()


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_each_corruption_keeps_shape_and_range_and_is_seeded(name, images):
    out = corrupt(images, name, 3, seed=1)
    assert out.shape == images.shape and out.dtype == images.dtype and 0 <= out.min() <= out.max() <= 1
    assert torch.equal(out, corrupt(images, name, 3, seed=1)) and not torch.equal(out, images)


@pytest.mark.parametrize("name", sorted(set(CORRUPTIONS) - UNORDERED))
def test_higher_severity_moves_the_image_further(name, images):
    distances = [distance(corrupt(images, name, s), images) for s in range(1, 6)]
    assert distances == sorted(distances), distances


def test_glass_blur_and_saturate_in_their_own_order(images):
    glass = {s: distance(corrupt(images, "glass_blur", s), images) for s in range(1, 6)}
    assert glass[4] > glass[2] and glass[5] > glass[3]  # the same blur, two sweeps of swaps instead of one
    sat = {s: distance(corrupt(images, "saturate", s), images) for s in range(1, 6)}
    assert sat[2] > sat[1] and sat[5] > sat[4] > sat[3]  # further from S, each way


def test_severity_zero_and_identity_parameters_return_the_input(images):
    g = torch.Generator().manual_seed(0)
    assert all(corrupt(images, name, 0) is images for name in CORRUPTIONS)
    for changed in (gaussian_noise(images, 0.0, g), gaussian_blur(images, 0.0, g), defocus_blur(images, (0, 0.1), g),
                    zoom_blur(images, (1.0,), g), contrast(images, 1.0, g), brightness(images, 0.0, g),
                    saturate(images, (1.0, 0.0), g), fog(images, (0.0, 2.0), g)):
        torch.testing.assert_close(changed, images, atol=1e-6, rtol=0)


def test_closed_forms_on_hand_made_pixels():
    g = torch.Generator()
    pixel = torch.tensor([0.8, 0.4, 0.2]).view(1, 3, 1, 1)  # V 0.8, S 0.75
    torch.testing.assert_close(brightness(pixel, 0.1, g).flatten(), torch.tensor([0.9, 0.45, 0.225]))
    torch.testing.assert_close(saturate(pixel, (0.5, 0.0), g).flatten(), torch.tensor([0.8, 0.6, 0.5]))  # S 0.375
    grey = torch.full((1, 3, 1, 1), 0.5)
    torch.testing.assert_close(saturate(grey, (1.0, 0.2), g).flatten(), torch.tensor([0.5, 0.4, 0.4]))  # hue 0: red
    two = torch.tensor([[0.0, 1.0], [1.0, 0.0]]).expand(1, 3, 2, 2)
    torch.testing.assert_close(contrast(two, 0.5, g)[0, 0], torch.tensor([[0.25, 0.75], [0.75, 0.25]]))


def test_not_provided_and_unknown_corruptions_are_refused_by_name(images):
    for name in NOT_PROVIDED:
        with pytest.raises(ValueError, match="not provided"):
            corrupt(images, name, 1)
    with pytest.raises(ValueError, match="unknown corruption"):
        CorruptionConfig("rain")
    for severity in (0, 6, -1):
        with pytest.raises(ValueError, match="severity must be 1-5"):
            CorruptionConfig("fog", severity)


def test_a_cell_is_cached_and_its_images_are_made_once_for_every_model(trained_pair, tmp_path):
    run = RunContext(ResultCache(tmp_path))
    config = CorruptionConfig("gaussian_noise", 5, DATA)
    first = corruption_cell(trained_pair["none"], config, run)
    sets = list(corrupted_dir().glob("*.npy"))
    second = corruption_cell(trained_pair["bn"], config, run)
    assert len(sets) == 1 and list(corrupted_dir().glob("*.npy")) == sets  # the same images, made once
    assert first.n == second.n == 30 and 0 <= first.accuracy <= 1
    assert corruption_cell(trained_pair["none"], config, RunContext(ResultCache(tmp_path), cached_only=True)) == first
    fresh = corruption_cell(trained_pair["none"], config, RunContext(ResultCache(tmp_path / "fresh")))
    assert fresh.accuracy == first.accuracy  # recomputed from the stored images == cached


def test_the_sweep_summary_is_the_mean_error_over_its_cells(trained_pair, tmp_path):
    sweep = corruption_sweep(trained_pair["bn"], ("contrast", "fog"), (1, 5), DATA, run=RunContext(ResultCache(tmp_path)))
    errors = [1 - c["accuracy"] for c in sweep["cells"]]
    assert len(errors) == 4 and sweep["mean_corruption_error"] == pytest.approx(sum(errors) / 4)
    assert sweep["relative_mean_corruption_error"] == pytest.approx(sum(errors) / 4 - (1 - sweep["clean_accuracy"]))
    cells = {(name, severity): CorruptionCell(corruption=name, severity=severity, n=10, accuracy=accuracy,
                                              clean_accuracy=0.9)
             for name, severity, accuracy in (("a", 1, 0.5), ("a", 2, 0.3), ("b", 1, 0.8))}
    assert summary(cells)["per_corruption"] == pytest.approx({"a": 0.6, "b": 0.2})


def write_cifar10c(folder, labels: np.ndarray, corruption: str = "fog") -> np.ndarray:
    """Small arrays in the published layout: 5 severities of the given test images one after another."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5 * len(labels), 32, 32, 3), dtype=np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / f"{corruption}.npy", images)
    np.save(folder / "labels.npy", np.tile(labels, 5).astype(np.uint8))
    return images


def test_published_arrays_are_read_by_severity_block(tmp_path, monkeypatch):
    monkeypatch.setenv("NORMSCOPE_CIFAR10C", str(tmp_path / "c"))
    labels = np.arange(20) % 10
    images = write_cifar10c(tmp_path / "c", labels, "snow")  # ImageMagick's snow: published, not made here
    x, y = load_cifar10c("snow", 3)
    assert x.shape == (20, 3, 32, 32) and y.tolist() == labels.tolist()
    assert torch.equal(x.permute(0, 2, 3, 1), torch.from_numpy(images[40:60]))
    assert load_dataset("cifar10c:snow:3").split("test")[0].shape == (20, 3, 32, 32)


def test_broken_cifar10c_folders_are_clear_errors(tmp_path, monkeypatch):
    folder = tmp_path / "c"
    monkeypatch.setenv("NORMSCOPE_CIFAR10C", str(folder))
    with pytest.raises(DataError, match="fog.npy is missing"):
        load_cifar10c("fog", 1)
    write_cifar10c(folder, np.arange(10))
    np.save(folder / "fog.npy", np.zeros((50, 32, 32), dtype=np.uint8))
    with pytest.raises(DataError, match=r"expected uint8 \[5 N, 32, 32, 3\]"):
        load_cifar10c("fog", 1)
    (folder / "fog.npy").write_bytes(b"not an array")
    with pytest.raises(DataError, match="not a readable"):
        load_cifar10c("fog", 1)
    with pytest.raises(DataError, match="has no corruption"):
        load_cifar10c("rain", 1)


def test_quantized_rounds_down_as_the_published_arrays_do():
    assert quantized(torch.tensor([0.0, 0.5, 254.9 / 255, 1.0])).tolist() == [0, 127, 254, 255]
