"""The published CIFAR-10-C arrays (Hendrycks & Dietterich 2019) as a data source, ``cifar10c:<corruption>:<severity>``.

The folder (``NORMSCOPE_CIFAR10C``, else ``<NORMSCOPE_DATA>/CIFAR-10-C``) holds ``<corruption>.npy``: uint8
``[5 N, 32, 32, 3]``, severities 1-5 one after another, each the N CIFAR-10 test images in their original order,
and ``labels.npy`` (``[5 N]``). A missing file or a wrong shape is a :class:`DataError` naming the file.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from core.corruptions.transforms import CORRUPTIONS, NOT_PROVIDED, check_severity
from core.data import DataError, Dataset, register_source
from core.data.dataset import channel_stats
from core.data.sources import CIFAR10_CLASSES, data_root
from core.io import read_npy

PUBLISHED = (*CORRUPTIONS, *NOT_PROVIDED)  # the published arrays hold every corruption, ImageMagick's too


def cifar10c_dir(root: str | os.PathLike | None = None) -> Path:
    return Path(root or os.environ.get("NORMSCOPE_CIFAR10C") or data_root() / "CIFAR-10-C")


def read_array(path: Path, shape_tail: tuple[int, ...]) -> np.ndarray:
    """A uint8 ``.npy`` of shape ``[M, *shape_tail]``, memory-mapped (never unpickled)."""
    if not path.is_file():
        raise DataError(f"{path} is missing: CIFAR-10-C's arrays go in {path.parent} (set NORMSCOPE_CIFAR10C)")
    try:
        array = read_npy(path, mmap=True)
    except (ValueError, OSError) as e:
        raise DataError(f"{path} is not a readable .npy array ({e})") from None
    if array.dtype != np.uint8 or tuple(array.shape[1:]) != shape_tail or len(array) % 5:
        raise DataError(f"{path}: expected uint8 [5 N, {', '.join(map(str, shape_tail))}], got "
                        f"{array.dtype} {list(array.shape)}")
    return array


def load_cifar10c(corruption: str, severity: int, root: str | os.PathLike | None = None) -> tuple[torch.Tensor,
                                                                                                  torch.Tensor]:
    """The N images (uint8 ``[N, 3, 32, 32]``) and labels of one corruption at one severity."""
    if corruption not in PUBLISHED:
        raise DataError(f"CIFAR-10-C has no corruption {corruption!r}; it has {', '.join(PUBLISHED)}")
    folder = cifar10c_dir(root)
    images, labels = read_array(folder / f"{corruption}.npy", (32, 32, 3)), read_array(folder / "labels.npy", ())
    if len(labels) != len(images):
        raise DataError(f"{folder}: {len(images)} images of {corruption} but {len(labels)} labels")
    n = len(images) // 5
    block = slice((check_severity(severity) - 1) * n, severity * n)
    x = torch.from_numpy(np.array(images[block])).permute(0, 3, 1, 2).contiguous()
    return x, torch.from_numpy(np.asarray(labels[block], dtype=np.int64))


def cifar10c_dataset(rest: str) -> Dataset:
    """``cifar10c:<corruption>:<severity>``: that block of the published arrays as a test split."""
    corruption, _, severity = rest.rpartition(":")
    if not corruption or not severity.isdigit():
        raise DataError(f"name CIFAR-10-C data as cifar10c:<corruption>:<severity>, got cifar10c:{rest}")
    x, y = load_cifar10c(corruption, int(severity))
    mean, std = channel_stats(x)
    return Dataset(f"cifar10c:{rest}", {"test": (x, y)}, list(CIFAR10_CLASSES), mean, std,
                   f"CIFAR-10-C, {corruption} at severity {severity}", str(cifar10c_dir()))


register_source("cifar10c:", cifar10c_dataset)
