"""Readers for datasets on disk: the JPEG-derived CIFAR-10 copy, torchvision's formats, and ``.npz`` arrays.

Roots come from arguments, else environment variables:

* ``NORMSCOPE_DATA``: a folder holding torchvision datasets (``cifar-10-batches-py`` ...);
* ``NORMSCOPE_CIFAR10_JPEG``: the folder of ``cifar10_jpeg.npz``; otherwise ``<NORMSCOPE_DATA>/cifar10-jpeg``
  and ``../shared/data/cifar10-jpeg`` beside the project are tried.

``cifar10`` and ``cifar10-jpeg`` hold the same test images under the same classes (the JPEG copy is lossy):
:func:`evaluation_datasets` lets a model trained on one be evaluated on the other when only that one is here.
"""
from __future__ import annotations

import functools
import hashlib
import io
import os
import threading
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np
import torch

from core.data.dataset import STATS_IMAGES, DataError, Dataset, channel_stats, check_arrays
from core.io import atomic_writer, read_npz

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
JPEG_FILE = "cifar10_jpeg.npz"
DECODING = threading.Lock()
SAME_IMAGES = {"cifar10": "cifar10", "cifar10-jpeg": "cifar10"}  # dataset -> the images it holds


def data_root(root: str | os.PathLike | None = None) -> Path:
    return Path(root or os.environ.get("NORMSCOPE_DATA") or PROJECT_ROOT / "data")


def cifar10_jpeg_candidates(root: str | os.PathLike | None = None) -> list[Path]:
    """Where the JPEG copy may be: ``NORMSCOPE_CIFAR10_JPEG`` alone when set (a wrong setting must not be hidden
    by a copy found elsewhere), else beside the torchvision data and in ``../shared/data``."""
    env = os.environ.get("NORMSCOPE_CIFAR10_JPEG")
    if env:
        return [Path(env)]
    return [data_root(root) / "cifar10-jpeg", PROJECT_ROOT.parent / "shared" / "data" / "cifar10-jpeg"]


def evaluation_datasets(trained_on: str, source: str) -> list[str]:
    """The datasets a model trained on ``trained_on`` may be evaluated on, the data source ``source`` first.

    The source only where it holds the model's images and classes (genuine CIFAR-10 for a model trained on the
    JPEG copy, and the reverse); otherwise only the model's own dataset (a CIFAR-10 model on the built-in toy
    images would be nonsense). A model of unknown origin gets the source, as before.
    """
    if trained_on in ("unknown", source):
        return [source]
    same = SAME_IMAGES.get(trained_on) is not None and SAME_IMAGES.get(trained_on) == SAME_IMAGES.get(source)
    return [source, trained_on] if same else [trained_on]


# Measured 2026-12-05 (closing note of issue 27): akamaster/pytorch_resnet_cifar10's published weights, loaded through
# core.checkpoints with its trainer's ImageNet mean/std, on all 10,000 test images; its own files record the first pair
JPEG_SHIFT = ("akamaster's published ResNet20 and ResNet56 score 91.8 and 93.6 % on genuine CIFAR-10 and 81.0 and "
              "83.2 % on cifar10-jpeg")


def data_shift(trained_on: str, evaluated_on: str) -> str | None:
    """What a reader must know beside a model's numbers read on other images than its training images' kind: the
    genuine CIFAR-10 and its lossy JPEG copy hold the same images, but not the same pixels. None where nothing
    differs (the same dataset, an unknown one, or datasets that share no images, never mixed)."""
    if (trained_on, evaluated_on) == ("cifar10", "cifar10-jpeg"):
        return ("trained on genuine CIFAR-10, evaluated on cifar10-jpeg (a lossy JPEG copy of its images): "
                f"its accuracy here is lower than on the images it was trained on ({JPEG_SHIFT})")
    if (trained_on, evaluated_on) == ("cifar10-jpeg", "cifar10"):
        return ("trained on cifar10-jpeg (a lossy JPEG copy), evaluated on genuine CIFAR-10: the pixels differ from its "
                "training images (the shift's effect in this direction is not measured)")
    return None


def find_cifar10_jpeg(root: str | os.PathLike | None = None) -> Path | None:
    return next((p for p in cifar10_jpeg_candidates(root) if (p / JPEG_FILE).is_file()), None)


def decode_jpegs(blob: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Decode concatenated JPEG files into uint8 NHWC RGB."""
    from PIL import Image

    out = np.empty((len(offsets) - 1, 32, 32, 3), dtype=np.uint8)
    for i in range(len(out)):
        img = Image.open(io.BytesIO(blob[offsets[i]:offsets[i + 1]].tobytes())).convert("RGB")
        if img.size != (32, 32):
            raise DataError(f"image {i} is {img.size}, expected 32x32")
        out[i] = np.asarray(img)
    return out


def load_cifar10_jpeg(root: str | os.PathLike | None = None, cache_dir: Path | None = None) -> Dataset:
    """The JPEG-derived CIFAR-10 copy; each split decoded once into ``cache_dir`` when first read, then read from
    there (a page showing test images never waits for the 50,000 training images)."""
    folder = find_cifar10_jpeg(root)
    if folder is None:
        tried = ", ".join(str(p / JPEG_FILE) for p in cifar10_jpeg_candidates(root))
        raise DataError(f"cifar10-jpeg not found (tried {tried}); set NORMSCOPE_CIFAR10_JPEG to its folder, or get "
                        "genuine CIFAR-10 (`python -m core data get cifar10`, or Get CIFAR-10 in the dashboard)")
    source = folder / JPEG_FILE
    splits = LazySplits({s: functools.partial(_decoded_split, source, s, cache_dir) for s in ("train", "test")})
    return Dataset("cifar10-jpeg", splits, CIFAR10_CLASSES, *_stats(source, cache_dir),
                   description="CIFAR-10 decoded from a public per-image JPEG copy (lossy, not bit-exact)",
                   source=str(source))


class LazySplits(Mapping):
    """A dataset's splits, each loaded on first access (once, whichever session asks first)."""

    def __init__(self, loaders: dict[str, Callable[[], tuple[torch.Tensor, torch.Tensor]]]) -> None:
        self._loaders, self._loaded, self._lock = loaders, {}, threading.Lock()

    def __getitem__(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        with self._lock:
            if split not in self._loaded:
                self._loaded[split] = self._loaders[split]()
            return self._loaded[split]

    def __contains__(self, split: object) -> bool:  # Mapping's own would load the split to answer
        return split in self._loaders

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaders)

    def __len__(self) -> int:
        return len(self._loaders)


def _decoded_path(source: Path, cache_dir: Path | None, part: str) -> Path:
    from core.cache import default_cache_dir

    stat = source.stat()
    tag = hashlib.sha256(f"{source.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    return (cache_dir or default_cache_dir()) / "data" / f"cifar10-jpeg-{tag}-{part}.npz"


def _decoded(source: Path, cache_dir: Path | None, part: str, decode: Callable[[], dict[str, np.ndarray]]) -> dict:
    """The arrays of ``part``, decoded by ``decode`` once (its file kept in the cache) and read from there."""
    target = _decoded_path(source, cache_dir, part)
    if not target.is_file():
        with DECODING:  # one decode per process: the sessions that asked meanwhile read its file
            if not target.is_file():
                try:
                    arrays = decode()
                except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
                    raise DataError(f"{source} is unreadable or corrupt ({e}); check it with `sha256sum -c "
                                    "SHA256SUMS`") from e
                with atomic_writer(target) as f:  # two sessions decoding at once each rename their own whole file
                    np.savez(f, **arrays)
    return read_npz(target)


def _decoded_split(source: Path, split: str, cache_dir: Path | None) -> tuple[torch.Tensor, torch.Tensor]:
    def decode() -> dict[str, np.ndarray]:
        z = read_npz(source, [f"{split}_jpeg", f"{split}_offsets", f"{split}_labels"])
        return {"x": decode_jpegs(z[f"{split}_jpeg"], z[f"{split}_offsets"]),
                "y": z[f"{split}_labels"].astype(np.int64)}
    z = _decoded(source, cache_dir, split, decode)
    return torch.from_numpy(z["x"]).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(z["y"].astype(np.int64))


def _stats(source: Path, cache_dir: Path | None) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """:func:`channel_stats` of the training images, from the first ones it reads (no full decode)."""
    def decode() -> dict[str, np.ndarray]:
        z = read_npz(source, ["train_jpeg", "train_offsets"])
        first = decode_jpegs(z["train_jpeg"], z["train_offsets"][:STATS_IMAGES + 1])
        mean, std = channel_stats(torch.from_numpy(first).permute(0, 3, 1, 2))
        return {"mean": np.array(mean), "std": np.array(std)}
    z = _decoded(source, cache_dir, "stats", decode)
    return tuple(z["mean"].tolist()), tuple(z["std"].tolist())


def load_npz(path: str | os.PathLike) -> Dataset:
    """A user's arrays: ``x`` uint8 NHWC and ``y`` int64 (one split, 'test'), or ``x_train``/``y_train``/... ."""
    path = Path(path)
    try:
        z = read_npz(path)
        keys = set(z)
        pairs = {"test": ("x", "y")} if {"x", "y"} <= keys else \
            {s: (f"x_{s}", f"y_{s}") for s in ("train", "test") if {f"x_{s}", f"y_{s}"} <= keys}
        if not pairs:
            raise DataError(f"{path}: needs arrays 'x' and 'y' (or x_train/y_train, x_test/y_test); has {sorted(keys)}")
        splits = {s: _npz_split(z[xk], z[yk], f"{path}:{s}") for s, (xk, yk) in pairs.items()}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: not a readable .npz file ({e})") from e
    ys = torch.cat([y for _, y in splits.values()])
    classes = [str(i) for i in range(int(ys.max()) + 1)] if len(ys) else []
    first = next(iter(splits.values()))[0]
    return Dataset(f"npz:{path.name}", splits, classes, *channel_stats(first), source=str(path))


def _npz_split(x: np.ndarray, y: np.ndarray, where: str) -> tuple[torch.Tensor, torch.Tensor]:
    if x.ndim != 4 or x.shape[-1] != 3:
        raise DataError(f"{where}: x must be NHWC with 3 channels, got shape {x.shape}")
    xt = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).contiguous()
    yt = torch.from_numpy(y.astype(np.int64))
    check_arrays(xt, yt, where)
    return xt, yt


def load_torchvision(name: str, root: str | os.PathLike | None = None, download: bool = False) -> Dataset:
    """CIFAR-10 / CIFAR-100 / SVHN in torchvision's own on-disk formats (checksummed by torchvision)."""
    import torchvision.datasets as tvd

    folder = data_root(root)
    makers = {"cifar10": lambda s: tvd.CIFAR10(folder, train=s == "train", download=download),
              "cifar100": lambda s: tvd.CIFAR100(folder, train=s == "train", download=download),
              "svhn": lambda s: tvd.SVHN(folder, split=s, download=download)}
    try:
        raw = {s: makers[name](s) for s in ("train", "test")}
    except (RuntimeError, OSError, ImportError) as e:
        raise DataError(f"{name} not found or corrupt under {folder} ({e}); put torchvision's files there, "
                        f"set NORMSCOPE_DATA, or pass download=True / --download") from e
    splits = {s: _torchvision_split(d) for s, d in raw.items()}
    classes = list(getattr(raw["train"], "classes", [str(i) for i in range(10)]))
    return Dataset(name, splits, classes, *channel_stats(splits["train"][0]), source=str(folder))


def _torchvision_split(d) -> tuple[torch.Tensor, torch.Tensor]:
    data = np.asarray(d.data)
    x = torch.from_numpy(data if data.shape[1] == 3 else data.transpose(0, 3, 1, 2).copy())
    labels = getattr(d, "targets", None)
    y = torch.as_tensor(np.asarray(labels if labels is not None else d.labels), dtype=torch.int64)
    return x.contiguous(), y


def torchvision_available(name: str, root: str | os.PathLike | None = None) -> bool:
    folders = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python", "svhn": "test_32x32.mat"}
    return (data_root(root) / folders[name]).exists()
