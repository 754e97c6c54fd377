"""Data: datasets held in memory as uint8 tensors, by name.

Names: ``builtin`` (made by the code), ``cifar10-jpeg`` (the JPEG-derived copy), ``cifar10``,
``cifar100``, ``svhn`` (torchvision's formats), ``npz:<path>`` (a user's arrays), ``features:<id>`` (a feature
dataset extracted by :mod:`core.features`), and ``auto``:
genuine CIFAR-10 if present, else ``cifar10-jpeg`` if present, else ``builtin``.
"""
from __future__ import annotations

import functools
import os

from core.data.dataset import DataError, Dataset, balanced_subset, channel_stats, to_float
from core.data.download import download_cifar10
from core.data.sources import (CIFAR10_CLASSES, evaluation_datasets, find_cifar10_jpeg, load_cifar10_jpeg, load_npz,
                                load_torchvision, torchvision_available)
from core.data.synthetic import CLASSES as BUILTIN_CLASSES
from core.data.synthetic import make_builtin

DATASETS = ("builtin", "cifar10-jpeg", "cifar10", "cifar100", "svhn")
# Class names known without reading a file (the others come from the dataset's own files).
KNOWN_CLASSES = {"builtin": BUILTIN_CLASSES, "cifar10-jpeg": CIFAR10_CLASSES, "cifar10": CIFAR10_CLASSES,
                 "svhn": [str(i) for i in range(10)]}


def resolve_name(name: str = "auto", root: str | None = None) -> str:
    """``auto`` -> the best dataset present; other names pass through."""
    if name != "auto":
        return name
    if torchvision_available("cifar10", root):
        return "cifar10"
    return "cifar10-jpeg" if find_cifar10_jpeg(root) else "builtin"


def available_datasets(root: str | None = None) -> list[str]:
    """Dataset names that load on this machine now, without downloading."""
    present = {"builtin": True, "cifar10-jpeg": find_cifar10_jpeg(root) is not None}
    present |= {n: torchvision_available(n, root) for n in ("cifar10", "cifar100", "svhn")}
    return [n for n in DATASETS if present[n]]


def load_dataset(name: str = "auto", root: str | None = None, download: bool = False) -> Dataset:
    """Load a dataset by name (see the module docstring); raises :class:`DataError` with the paths tried."""
    if name.startswith("features:"):  # not memoised: its folder is the cache's in use, and may be extracted anew
        from core.features import load_feature_dataset  # core.features reads this module
        return load_feature_dataset(name.removeprefix("features:"))
    return load_named(name, root, download)


@functools.lru_cache(maxsize=4)
def load_named(name: str = "auto", root: str | None = None, download: bool = False) -> Dataset:
    """The datasets that do not change on disk, decoded once per process."""
    name = resolve_name(name, root)
    if name == "builtin":
        return make_builtin()
    if name == "cifar10-jpeg":
        return load_cifar10_jpeg(root)
    if name.startswith("npz:"):
        return load_npz(os.path.expanduser(name[4:]))
    if name in ("cifar10", "cifar100", "svhn"):
        return load_torchvision(name, root, download)
    raise DataError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}, npz:<path> or auto")


def class_names(name: str) -> list[str]:
    """A dataset's class names, without decoding its images where they are known."""
    name = resolve_name(name)
    return list(KNOWN_CLASSES[name]) if name in KNOWN_CLASSES else load_dataset(name).classes


__all__ = ["class_names", "DataError", "Dataset", "balanced_subset", "channel_stats", "to_float", "load_dataset",
           "resolve_name", "available_datasets", "DATASETS", "make_builtin", "download_cifar10",
           "evaluation_datasets"]
