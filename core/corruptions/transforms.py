"""The CIFAR-10-C corruptions (Hendrycks & Dietterich 2019) on image batches in [0, 1], with the CIFAR-10-C
parameters of ``make_cifar_c.py`` (which differ from ImageNet-C's: those over-corrupt 32x32 images).

Each corruption is ``f(x, level, generator) -> x'``: ``x`` is ``[N, 3, H, W]`` float in [0, 1] on any device,
``level`` the parameter one severity stands for, and every random draw comes from ``generator`` (a CPU
``torch.Generator``), so a seed gives the same images on every device. :data:`CORRUPTIONS` holds the five
levels of each. The published arrays are 8-bit (see :func:`quantized`).

Written from the reference's definitions, with these library behaviours made explicit: scikit-image's
``gaussian`` (scipy's ``gaussian_filter``: truncate 4, edges repeated), OpenCV's ``filter2D`` and
``GaussianBlur`` (edges mirrored without repeating the edge, ``BORDER_REFLECT_101``), scipy's ``zoom`` (order
1, corners aligned), scikit-image's HSV round trip, done in closed form: with hue fixed, RGB scales with V, and
each channel moves linearly with S (a grey pixel has hue 0, red). ``scripts/check_corruptions.py`` compares each
against those libraries. Not provided, because they need ImageMagick (motion blur, snow), the reference's frost
photographs (frost) or OpenCV-specific warps and edge maps (elastic transform, spatter): they are listed in
:data:`NOT_PROVIDED` and refused by name, never replaced by something else.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from core.errors import ParameterError

Corruption = Callable[[torch.Tensor, object, torch.Generator], torch.Tensor]


def draw(generator: torch.Generator, like: torch.Tensor, sample: Callable[..., torch.Tensor]) -> torch.Tensor:
    """A random tensor drawn on the CPU from ``generator`` (device-independent), moved to ``like``'s device."""
    return sample(generator).to(like.device, like.dtype)


# --- noise -------------------------------------------------------------------------------------------------------

def gaussian_noise(x: torch.Tensor, sigma: float, g: torch.Generator) -> torch.Tensor:
    noise = draw(g, x, lambda g: torch.randn(x.shape, generator=g))
    return (x + sigma * noise).clamp(0, 1)


def shot_noise(x: torch.Tensor, photons: float, g: torch.Generator) -> torch.Tensor:
    """Poisson noise: each value ``x`` becomes ``Poisson(x * photons) / photons``."""
    counts = draw(g, x, lambda g: torch.poisson(x.detach().cpu().double() * photons, generator=g))
    return (counts / photons).clamp(0, 1)


def impulse_noise(x: torch.Tensor, amount: float, g: torch.Generator) -> torch.Tensor:
    """Salt and pepper on ``amount`` of the values (each channel on its own), half of them 1, half 0."""
    flipped = draw(g, x, lambda g: torch.rand(x.shape, generator=g)) <= amount
    salted = draw(g, x, lambda g: torch.rand(x.shape, generator=g)) <= 0.5
    return torch.where(flipped, salted.to(x.dtype), x)


def speckle_noise(x: torch.Tensor, sigma: float, g: torch.Generator) -> torch.Tensor:
    noise = draw(g, x, lambda g: torch.randn(x.shape, generator=g))
    return (x + x * sigma * noise).clamp(0, 1)


# --- blur --------------------------------------------------------------------------------------------------------

def gaussian_kernel1d(sigma: float, radius: int) -> torch.Tensor:
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def filter2d(x: torch.Tensor, kernel: torch.Tensor, mode: str) -> torch.Tensor:
    """Each channel correlated with the 2-D ``kernel`` (odd sides), edges padded by ``mode``."""
    kh, kw = kernel.shape
    padded = F.pad(x, (kw // 2, kw // 2, kh // 2, kh // 2), mode=mode)
    weight = kernel.to(x.device, x.dtype).expand(x.shape[1], 1, kh, kw)
    return F.conv2d(padded, weight, groups=x.shape[1])


def gaussian_filter(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """scipy's ``gaussian_filter`` over H and W: radius ``int(4 sigma + 0.5)``, edges repeated (``nearest``)."""
    if sigma <= 0:
        return x
    k = gaussian_kernel1d(sigma, int(4 * sigma + 0.5))
    return filter2d(filter2d(x, k.view(1, -1), "replicate"), k.view(-1, 1), "replicate")


def gaussian_blur(x: torch.Tensor, sigma: float, g: torch.Generator) -> torch.Tensor:
    return gaussian_filter(x, sigma).clamp(0, 1)


def disk_kernel(radius: float, alias_blur: float) -> torch.Tensor:
    """The reference's defocus kernel: a normalized disk on a 17x17 grid (radius <= 8), anti-aliased by a 3x3
    Gaussian of ``alias_blur`` (OpenCV's ``GaussianBlur``: mirrored edges)."""
    half = 8 if radius <= 8 else math.ceil(radius)
    t = torch.arange(-half, half + 1, dtype=torch.float64)
    disk = ((t.view(-1, 1) ** 2 + t.view(1, -1) ** 2) <= radius ** 2).double()
    disk = (disk / disk.sum())[None, None]
    k = gaussian_kernel1d(alias_blur, 1 if radius <= 8 else 2)
    return filter2d(filter2d(disk, k.view(1, -1), "reflect"), k.view(-1, 1), "reflect")[0, 0]


def defocus_blur(x: torch.Tensor, level: tuple[float, float], g: torch.Generator) -> torch.Tensor:
    radius, alias_blur = level
    if radius <= 0:
        return x
    return filter2d(x, disk_kernel(radius, alias_blur), "reflect").clamp(0, 1)


def glass_blur(x: torch.Tensor, level: tuple[float, int, int], g: torch.Generator) -> torch.Tensor:
    """Blur, round down to 8 bits, swap each pixel with a random neighbour (``iterations`` sweeps from the
    bottom-right corner), blur again."""
    sigma, delta, iterations = level
    out = (gaussian_filter(x, sigma) * 255).floor().clamp(0, 255) / 255
    n, _, h, w = x.shape
    rows = torch.arange(n, device=x.device)
    positions = [(i, j) for i in range(h - delta, delta, -1) for j in range(w - delta, delta, -1)]
    offsets = torch.randint(-delta, delta, (iterations, len(positions), 2, n), generator=g).to(x.device)
    for sweep in range(iterations):
        for k, (i, j) in enumerate(positions):
            dx, dy = offsets[sweep, k]
            here, there = out[rows, :, i, j], out[rows, :, i + dy, j + dx]
            out[rows, :, i, j], out[rows, :, i + dy, j + dx] = there, here
    return gaussian_filter(out, sigma).clamp(0, 1)


def clipped_zoom(x: torch.Tensor, factor: float) -> torch.Tensor:
    """The centre ``ceil(H / factor)`` square zoomed by ``factor`` (bilinear, corners aligned, as scipy's
    ``zoom``), cropped back to the middle ``H x W``."""
    h, w = x.shape[-2:]
    crop = math.ceil(h / factor)
    top = (h - crop) // 2
    size = round(crop * factor)
    zoomed = F.interpolate(x[..., top:top + crop, top:top + crop], size=(size, size), mode="bilinear",
                           align_corners=True)
    trim = (size - h) // 2
    return zoomed[..., trim:trim + h, trim:trim + w]


def zoom_blur(x: torch.Tensor, factors: tuple[float, ...], g: torch.Generator) -> torch.Tensor:
    """The image averaged with itself zoomed by each factor."""
    total = x + sum(clipped_zoom(x, f) for f in factors)
    return (total / (len(factors) + 1)).clamp(0, 1)


# --- weather and digital -----------------------------------------------------------------------------------------

def plasma_fractal(n: int, size: int, decay: float, g: torch.Generator) -> torch.Tensor:
    """``n`` diamond-square height maps of side ``size`` (a power of two), each scaled to [0, 1]: every square's
    and diamond's centre is the mean of its corners plus noise, uniform in +-wibble**2 as in the reference (wibble
    100, divided by ``decay`` each level)."""
    grid = torch.zeros(n, size, size, dtype=torch.float64)
    step, wibble = size, 100.0

    def wibbled(corner_sum: torch.Tensor) -> torch.Tensor:
        uniform = 2 * torch.rand(corner_sum.shape, generator=g, dtype=torch.float64) - 1
        return corner_sum / 4 + wibble * wibble * uniform

    while step >= 2:
        half = step // 2
        corners = grid[:, 0::step, 0::step]
        square = corners + corners.roll(-1, 1)
        grid[:, half::step, half::step] = wibbled(square + square.roll(-1, 2))
        centres = grid[:, half::step, half::step]
        grid[:, 0::step, half::step] = wibbled(centres + centres.roll(1, 1) + corners + corners.roll(-1, 2))
        grid[:, half::step, 0::step] = wibbled(centres + centres.roll(1, 2) + corners + corners.roll(-1, 1))
        step, wibble = half, wibble / decay
    low = grid.flatten(1).amin(1).view(-1, 1, 1)
    grid = grid - low
    return grid / grid.flatten(1).amax(1).view(-1, 1, 1)


def fog(x: torch.Tensor, level: tuple[float, float], g: torch.Generator) -> torch.Tensor:
    """A plasma-fractal haze of strength ``level[0]`` added to every channel, rescaled by the image's maximum."""
    strength, decay = level
    h, w = x.shape[-2:]
    size = 1 << (max(h, w) - 1).bit_length()
    haze = plasma_fractal(len(x), size, decay, g)[:, None, :h, :w].to(x.device, x.dtype)
    peak = x.flatten(1).amax(1).view(-1, 1, 1, 1)
    return ((x + strength * haze) * peak / (peak + strength)).clamp(0, 1)


def brightness(x: torch.Tensor, shift: float, g: torch.Generator) -> torch.Tensor:
    """HSV value + ``shift`` (clipped to 1): with hue and saturation fixed, RGB scales with V; black stays grey."""
    value = x.amax(1, keepdim=True)
    brighter = (value + shift).clamp(0, 1)
    return torch.where(value > 0, x * brighter / value.clamp_min(1e-12), brighter.expand_as(x)).clamp(0, 1)


def saturate(x: torch.Tensor, level: tuple[float, float], g: torch.Generator) -> torch.Tensor:
    """HSV saturation ``S * level[0] + level[1]`` (clipped): with hue and value fixed each channel moves linearly
    with S; a grey pixel has hue 0 (red), as in scikit-image's conversion."""
    scale, shift = level
    value = x.amax(1, keepdim=True)
    sat = torch.where(value > 0, (value - x.amin(1, keepdim=True)) / value.clamp_min(1e-12), torch.zeros_like(value))
    new_sat = (sat * scale + shift).clamp(0, 1)
    coloured = value - (value - x) * new_sat / sat.clamp_min(1e-12)
    red = torch.cat([value, value * (1 - new_sat), value * (1 - new_sat)], 1)
    return torch.where(sat > 0, coloured, red).clamp(0, 1)


def contrast(x: torch.Tensor, factor: float, g: torch.Generator) -> torch.Tensor:
    """Each channel pulled towards its own mean over the image."""
    mean = x.mean((2, 3), keepdim=True)
    return ((x - mean) * factor + mean).clamp(0, 1)


def through_pil(x: torch.Tensor, change: Callable[[Image.Image], Image.Image]) -> torch.Tensor:
    """Each image as an 8-bit PIL image (values rounded), changed by ``change``, back to [0, 1]."""
    arrays = (x.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    out = np.stack([np.asarray(change(Image.fromarray(a)).convert("RGB")) for a in arrays])
    return torch.from_numpy(out).permute(0, 3, 1, 2).to(x.device, x.dtype) / 255


def jpeg_compression(x: torch.Tensor, quality: int, g: torch.Generator) -> torch.Tensor:
    def recompress(image: Image.Image) -> Image.Image:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality)
        return Image.open(buffer)
    return through_pil(x, recompress)


def pixelate(x: torch.Tensor, factor: float, g: torch.Generator) -> torch.Tensor:
    """Box-downsampled to ``factor`` of the side, box-upsampled back (PIL)."""
    h, w = x.shape[-2:]
    small = (int(w * factor), int(h * factor))
    return through_pil(x, lambda im: im.resize(small, Image.BOX).resize((w, h), Image.BOX))


@dataclass(frozen=True)
class CorruptionDef:
    """One corruption: its function, the parameter of each severity 1-5, its family and what it mostly
    corrupts (Sec. 3.2: noise the high-frequency, non-robust features; contrast and fog the low-frequency ones)."""

    name: str
    apply: Corruption
    levels: tuple
    family: str
    title: str


def _zoom_factors(stop: float) -> tuple[float, ...]:
    return tuple(np.arange(1, stop, 0.01).tolist())  # the reference's float arange, end points included as it has


CORRUPTIONS: dict[str, CorruptionDef] = {c.name: c for c in (
    CorruptionDef("gaussian_noise", gaussian_noise, (0.04, 0.06, 0.08, 0.09, 0.10), "noise", "Gaussian noise"),
    CorruptionDef("shot_noise", shot_noise, (500, 250, 100, 75, 50), "noise", "Shot noise"),
    CorruptionDef("impulse_noise", impulse_noise, (0.01, 0.02, 0.03, 0.05, 0.07), "noise", "Impulse noise"),
    CorruptionDef("speckle_noise", speckle_noise, (0.06, 0.1, 0.12, 0.16, 0.2), "noise", "Speckle noise"),
    CorruptionDef("gaussian_blur", gaussian_blur, (0.4, 0.6, 0.7, 0.8, 1.0), "blur", "Gaussian blur"),
    CorruptionDef("defocus_blur", defocus_blur, ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)), "blur",
                  "Defocus blur"),
    CorruptionDef("glass_blur", glass_blur, ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)),
                  "blur", "Glass blur"),
    CorruptionDef("zoom_blur", zoom_blur, tuple(_zoom_factors(s) for s in (1.06, 1.11, 1.16, 1.21, 1.26)), "blur",
                  "Zoom blur"),
    CorruptionDef("fog", fog, ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)), "weather", "Fog"),
    CorruptionDef("brightness", brightness, (0.05, 0.1, 0.15, 0.2, 0.3), "weather", "Brightness"),
    CorruptionDef("contrast", contrast, (0.75, 0.5, 0.4, 0.3, 0.15), "digital", "Contrast"),
    CorruptionDef("saturate", saturate, ((0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)), "digital", "Saturate"),
    CorruptionDef("jpeg_compression", jpeg_compression, (80, 65, 58, 50, 40), "digital", "JPEG"),
    CorruptionDef("pixelate", pixelate, (0.95, 0.9, 0.85, 0.75, 0.65), "digital", "Pixelate"),
)}
NOT_PROVIDED = {"motion_blur": "needs ImageMagick's motion blur", "snow": "needs ImageMagick's motion blur",
                "frost": "needs the reference's frost photographs", "elastic_transform": "needs OpenCV's warps",
                "spatter": "needs OpenCV's edge and distance maps"}
SEVERITIES = (1, 2, 3, 4, 5)


def corruption_def(name: str) -> CorruptionDef:
    """The corruption called ``name``; a clear error for one not provided or unknown."""
    if name in NOT_PROVIDED:
        raise ParameterError(f"corruption {name!r} is not provided ({NOT_PROVIDED[name]}); "
                             f"choose from {', '.join(CORRUPTIONS)}")
    if name not in CORRUPTIONS:
        raise ParameterError(f"unknown corruption {name!r}; choose from {', '.join(CORRUPTIONS)}")
    return CORRUPTIONS[name]


def check_severity(severity: int) -> int:
    if severity not in SEVERITIES:
        raise ParameterError(f"severity must be 1-5 (CIFAR-10-C's), got {severity}")
    return severity


def corrupt(x: torch.Tensor, name: str, severity: int, seed: int = 0) -> torch.Tensor:
    """``x`` (``[N, 3, H, W]`` in [0, 1]) under corruption ``name`` at ``severity`` (0: ``x`` itself), the random
    draws seeded by ``seed``."""
    spec = corruption_def(name)
    if severity == 0:
        return x
    level = spec.levels[check_severity(severity) - 1]
    return spec.apply(x, level, torch.Generator().manual_seed(seed))


def quantized(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] floats as the published arrays store them: ``uint8`` of the 0-255 values, rounded down."""
    return (x * 255).floor().clamp(0, 255).to(torch.uint8)
