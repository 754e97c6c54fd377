"""Data: datasets held in memory as uint8 tensors, by name.

Names: ``builtin`` (made by the code), ``cifar10-jpeg`` (the JPEG-derived copy), ``cifar10``,
``cifar100``, ``svhn`` (torchvision's formats), ``npz:<path>`` (a user's arrays), ``auto``: genuine CIFAR-10 if
present, else ``cifar10-jpeg`` if present, else ``builtin``; and the sources that the layers above register by
name prefix (:func:`register_source`): ``features:<id>``, a feature dataset extracted by :mod:`core.features`.
"""
from __future__ import annotations

from core.data.dataset import DataError, Dataset, balanced_subset, channel_stats, to_float
from core.data.download import download_cifar10
from core.data.named import (DATASETS, SOURCES, available_datasets, check_dataset_name, load_dataset, load_named,
                             register_source, resolve_name)
from core.data.sources import CIFAR10_CLASSES, data_shift, evaluation_datasets
from core.data.synthetic import CLASSES as BUILTIN_CLASSES
from core.data.synthetic import make_builtin

# Class names known without reading a file (the others come from the dataset's own files).
KNOWN_CLASSES = {"builtin": BUILTIN_CLASSES, "cifar10-jpeg": CIFAR10_CLASSES, "cifar10": CIFAR10_CLASSES,
                 "svhn": [str(i) for i in range(10)]}


def class_names(name: str) -> list[str]:
    """A dataset's class names, without decoding its images where they are known."""
    name = resolve_name(name)
    return list(KNOWN_CLASSES[name]) if name in KNOWN_CLASSES else load_dataset(name).classes


__all__ = ["class_names", "DataError", "Dataset", "balanced_subset", "channel_stats", "to_float", "load_dataset",
           "resolve_name", "available_datasets", "DATASETS", "make_builtin", "download_cifar10",
           "data_shift", "evaluation_datasets", "register_source", "SOURCES", "load_named", "check_dataset_name"]
