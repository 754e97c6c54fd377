"""Datasets by name: the names this layer knows, ``auto``, the sources registered by name prefix, and the memo
of decoded datasets (cleared when new data arrives, :func:`core.data.download.download_cifar10`)."""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Callable, Iterable

from core.data.dataset import DataError, Dataset
from core.io import UnsafePath, safe_name
from core.data.sources import find_cifar10_jpeg, load_cifar10_jpeg, load_npz, load_torchvision, torchvision_available
from core.data.synthetic import make_builtin

DATASETS = ("builtin", "cifar10-jpeg", "cifar10", "cifar100", "svhn")


def resolve_name(name: str = "auto", root: str | None = None) -> str:
    """``auto`` -> the best dataset present; other names pass through."""
    if name != "auto":
        return name
    if torchvision_available("cifar10", root):
        return "cifar10"
    return "cifar10-jpeg" if find_cifar10_jpeg(root) else "builtin"


def check_dataset_name(name: str, npz_roots: Iterable[Path] | None = None) -> str:
    """``name`` if it may name a dataset, else :class:`core.io.UnsafePath`, from the name alone (no file is
    opened, so a refusal says nothing of what exists): a registered source's id (``features:<id>``) is a plain
    name, never a path; an ``npz:`` path lies under one of ``npz_roots`` where they are given (a public server's
    data folders; None: anywhere, as on one's own machine)."""
    prefix = next((p for p in SOURCES if name.startswith(p)), None)
    if prefix is not None:
        safe_name(name.removeprefix(prefix), f"{prefix.rstrip(':')} dataset id")
    elif name.startswith("npz:") and npz_roots is not None and not _under(name[4:], npz_roots):
        raise UnsafePath(f"{name[:100]!r} is not a dataset this server offers: it reads .npz files only from its "
                         "data folder")
    return name


def _under(path: str, roots: Iterable[Path]) -> bool:
    target = Path(os.path.expanduser(path)).resolve()
    return target.suffix == ".npz" and any(target.is_relative_to(Path(r).resolve()) for r in roots)


def available_datasets(root: str | None = None) -> list[str]:
    """Dataset names that load on this machine now, without downloading."""
    present = {"builtin": True, "cifar10-jpeg": find_cifar10_jpeg(root) is not None}
    present |= {n: torchvision_available(n, root) for n in ("cifar10", "cifar100", "svhn")}
    return [n for n in DATASETS if present[n]]


# name prefix -> loader of the rest of the name. Filled by the modules that make such data (importing
# :mod:`core` imports them all), so this layer never imports an experiment.
SOURCES: dict[str, Callable[[str], Dataset]] = {}


def register_source(prefix: str, loader: Callable[[str], Dataset]) -> None:
    """``load_dataset(prefix + rest)`` calls ``loader(rest)``, unmemoised: such data may change on disk (a feature
    dataset lives in the cache in use, and may be extracted anew)."""
    SOURCES[prefix] = loader


def load_dataset(name: str = "auto", root: str | None = None, download: bool = False) -> Dataset:
    """Load a dataset by name (see the module docstring); raises :class:`DataError` with the paths tried."""
    prefix = next((p for p in SOURCES if name.startswith(p)), None)
    if prefix is not None:
        return SOURCES[prefix](name.removeprefix(prefix))
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
    registered = "".join(f", {prefix}<name>" for prefix in SOURCES)
    raise DataError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}, npz:<path>{registered} or auto")
