"""Images as the pages and the cache hold them: uint8 NHWC, base64 in JSON results, PNG for downloads, and
perturbations mapped to a visible range."""
from __future__ import annotations

import base64
import io

import numpy as np
import torch
from PIL import Image


def amplify(delta: torch.Tensor) -> torch.Tensor:
    """Map a perturbation to [0, 1] for display: 0.5 is zero, each image scaled by its own max |delta|."""
    scale = delta.abs().flatten(1).amax(1).clamp_min(1e-12).view(-1, 1, 1, 1)
    return (0.5 + 0.5 * delta / scale).clamp(0, 1)


def uint8_images(x: torch.Tensor) -> np.ndarray:
    """[N, 3, H, W] in [0, 1] -> uint8 ``[N, H, W, 3]``, what a browser shows."""
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def encode_images(x: torch.Tensor) -> dict:
    """[N, 3, H, W] in [0, 1] -> JSON-able base64 of uint8 NHWC (what a browser shows anyway)."""
    arr = uint8_images(x)
    return {"shape": list(arr.shape), "data": base64.b64encode(arr.tobytes()).decode("ascii")}


def decode_images(blob: dict) -> np.ndarray:
    """Inverse of :func:`encode_images`: uint8 ``[N, H, W, 3]``."""
    return np.frombuffer(base64.b64decode(blob["data"]), dtype=np.uint8).reshape(blob["shape"])


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()
