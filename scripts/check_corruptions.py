"""Check core.corruptions against the libraries CIFAR-10-C was made with (scikit-image, scipy, OpenCV), at the
CIFAR-10-C parameters, on real test images.

    pip install -r requirements-reference.txt      # scipy, scikit-image, opencv-python-headless (not the app's)
    python scripts/check_corruptions.py [--dataset cifar10-jpeg] [--images 200]

Deterministic corruptions are compared value by value (max |difference| in 0-255 units); random ones by the
statistic their definition fixes (the same draws cannot be shared with numpy's generator), except glass blur,
whose pixel swaps are replayed from the same draws.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.corruptions import CORRUPTIONS, corrupt  # noqa: E402
from core.data import load_dataset, to_float  # noqa: E402


def hwc(x: torch.Tensor) -> np.ndarray:
    return x.permute(0, 2, 3, 1).double().numpy()


def level(name: str, severity: int):
    return CORRUPTIONS[name].levels[severity - 1]


def reference_gaussian(images: np.ndarray, sigma: float) -> np.ndarray:
    from skimage.filters import gaussian
    return np.stack([gaussian(im, sigma=sigma, channel_axis=-1) for im in images])


def reference_defocus(images: np.ndarray, radius: float, alias_blur: float) -> np.ndarray:
    import cv2
    t = np.arange(-8, 9)
    xx, yy = np.meshgrid(t, t)
    disk = ((xx ** 2 + yy ** 2) <= radius ** 2).astype(np.float32)
    kernel = cv2.GaussianBlur(disk / disk.sum(), ksize=(3, 3), sigmaX=alias_blur)
    return np.stack([np.stack([cv2.filter2D(im[..., d].astype(np.float32), -1, kernel) for d in range(3)], -1)
                     for im in images])


def reference_zoom(images: np.ndarray, factors) -> np.ndarray:
    from scipy.ndimage import zoom

    def clipped(im, f):
        h = im.shape[0]
        ch = int(np.ceil(h / f))
        top = (h - ch) // 2
        out = zoom(im[top:top + ch, top:top + ch], (f, f, 1), order=1)
        trim = (out.shape[0] - h) // 2
        return out[trim:trim + h, trim:trim + h]
    return np.stack([(im + sum(clipped(im, f) for f in factors)) / (len(factors) + 1) for im in images])


def reference_hsv(images: np.ndarray, channel: int, change) -> np.ndarray:
    from skimage.color import hsv2rgb, rgb2hsv
    out = []
    for im in images:
        hsv = rgb2hsv(im)
        hsv[..., channel] = change(hsv[..., channel])
        out.append(hsv2rgb(hsv))
    return np.stack(out)


def reference_glass(x: torch.Tensor, sigma: float, delta: int, iterations: int, seed: int) -> np.ndarray:
    """The reference's loop over the same random offsets that core.corruptions draws."""
    n, _, h, w = x.shape
    positions = [(i, j) for i in range(h - delta, delta, -1) for j in range(w - delta, delta, -1)]
    g = torch.Generator().manual_seed(seed)
    offsets = torch.randint(-delta, delta, (iterations, len(positions), 2, n), generator=g).numpy()
    blurred = np.uint8(reference_gaussian(hwc(x), sigma) * 255)
    for k in range(n):
        im = blurred[k]
        for sweep in range(iterations):
            for p, (i, j) in enumerate(positions):
                dx, dy = offsets[sweep, p, :, k]
                im[i, j], im[i + dy, j + dx] = im[i + dy, j + dx].copy(), im[i, j].copy()
    return np.clip(reference_gaussian(blurred / 255.0, sigma), 0, 1)


def deterministic_checks(x: torch.Tensor) -> dict[str, float]:
    """Max |ours - reference| over every severity, in 0-255 units."""
    images, worst = hwc(x), {}
    references = {
        "gaussian_blur": lambda s: reference_gaussian(images, level("gaussian_blur", s)),
        "defocus_blur": lambda s: reference_defocus(images, *level("defocus_blur", s)),
        "zoom_blur": lambda s: reference_zoom(images.astype(np.float32), level("zoom_blur", s)),
        "brightness": lambda s: reference_hsv(images, 2, lambda v: np.clip(v + level("brightness", s), 0, 1)),
        "saturate": lambda s: reference_hsv(images, 1, lambda v: np.clip(v * level("saturate", s)[0]
                                                                          + level("saturate", s)[1], 0, 1)),
        "contrast": lambda s: (images - images.mean((1, 2), keepdims=True)) * level("contrast", s)
        + images.mean((1, 2), keepdims=True),
        "glass_blur": lambda s: reference_glass(x, *level("glass_blur", s), seed=0),
    }
    for name, reference in references.items():
        worst[name] = max(255 * np.abs(hwc(corrupt(x, name, s, 0)) - np.clip(reference(s), 0, 1)).max()
                          for s in range(1, 6))
    return worst


def random_checks(x: torch.Tensor) -> list[str]:
    """The statistic each random corruption's definition fixes, on a mid-grey image (no clipping)."""
    grey, lines = torch.full((64, 3, 32, 32), 0.5, dtype=x.dtype), []
    for s in range(1, 6):
        sigma = level("gaussian_noise", s)
        lines.append(f"gaussian_noise {s}: std {(corrupt(grey, 'gaussian_noise', s) - grey).std():.4f} vs {sigma}")
        photons = level("shot_noise", s)
        lines.append(f"shot_noise {s}: variance x photons {corrupt(grey, 'shot_noise', s).var() * photons:.4f} "
                     f"vs the mean 0.5")
        hit = (corrupt(grey, "impulse_noise", s) != grey).float().mean()
        lines.append(f"impulse_noise {s}: share changed {hit:.4f} vs {level('impulse_noise', s)}")
        spread = ((corrupt(grey, "speckle_noise", s) - grey) / grey).std()
        lines.append(f"speckle_noise {s}: relative std {spread:.4f} vs {level('speckle_noise', s)}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="auto")
    parser.add_argument("--images", type=int, default=200)
    args = parser.parse_args(argv)
    dataset = load_dataset(args.dataset)
    x = to_float(dataset.split("test")[0][:args.images]).double()
    print(f"{len(x)} test images of {dataset.name}")
    for name, diff in deterministic_checks(x).items():
        print(f"{name}: max |ours - reference| = {diff:.2e} (0-255 units), severities 1-5")
    print("\n".join(random_checks(x.float())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
