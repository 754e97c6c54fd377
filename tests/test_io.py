"""Files written while others write the same ones: two sessions of one server (threads of one process) decoding
the same dataset, storing the same result and uploading the same checkpoint at once, many times over, end with one
intact file each and no error; and no code names a temporary file that another writer could name too."""
from __future__ import annotations

import io
import re
import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.cache import ResultCache
from core.catalog import store_upload
from core.checkpoints import load_checkpoint, save_checkpoint
from core.data.sources import JPEG_FILE, load_cifar10_jpeg
from core.io import atomic_write, atomic_writer
from core.models import build

ROOT = Path(__file__).resolve().parents[1]
WRITERS, ROUNDS = 6, 15


def at_once(job, writers: int = WRITERS) -> list:
    """``job()`` in ``writers`` threads released together; their results (an exception in any is raised)."""
    start = threading.Barrier(writers)

    def released():
        start.wait()
        return job()
    with ThreadPoolExecutor(writers) as pool:
        return [f.result() for f in [pool.submit(released) for _ in range(writers)]]


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def test_atomic_write_replaces_the_file_and_leaves_nothing_behind(tmp_path):
    target = tmp_path / "deep" / "f.bin"
    atomic_write(target, b"one")
    atomic_write(target, b"two")
    assert target.read_bytes() == b"two" and stat.S_IMODE(target.stat().st_mode) == 0o644
    with pytest.raises(RuntimeError), atomic_writer(target) as f:
        f.write(b"half")
        raise RuntimeError("the writer failed halfway")
    assert target.read_bytes() == b"two" and not leftovers(tmp_path)


def jpeg_copy(folder: Path, per_split: int = 20) -> Path:
    """A small file in cifar10-jpeg's layout: each split's JPEGs concatenated, their offsets and labels."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split in ("train", "test"):
        blobs = []
        for _ in range(per_split):
            out = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(out, format="JPEG")
            blobs.append(out.getvalue())
        arrays[f"{split}_jpeg"] = np.frombuffer(b"".join(blobs), np.uint8)
        arrays[f"{split}_offsets"] = np.cumsum([0, *map(len, blobs)])
        arrays[f"{split}_labels"] = np.arange(per_split) % 10
    folder.mkdir()
    np.savez(folder / JPEG_FILE, **arrays)
    return folder


def test_sessions_decoding_the_same_dataset_at_once_each_get_it_whole(tmp_path, monkeypatch):
    monkeypatch.setenv("NORMSCOPE_CIFAR10_JPEG", str(jpeg_copy(tmp_path / "jpeg")))
    cache = tmp_path / "cache"
    for _ in range(ROUNDS):
        for decoded in (cache / "data").glob("*.npz"):
            decoded.unlink()  # as on a fresh server: nobody has decoded it yet
        loaded = at_once(lambda: load_cifar10_jpeg(cache_dir=cache))
        assert all(d.split("test")[0].shape == (20, 3, 32, 32) for d in loaded)
        decoded = sorted(p.name.rpartition("-")[2] for p in (cache / "data").iterdir())
        assert decoded == ["stats.npz", "test.npz"] and not leftovers(cache)  # the training images: not yet read


def test_sessions_storing_the_same_result_at_once_leave_one_entry(tmp_path):
    cache = ResultCache(tmp_path / "results")
    value = {"robust_accuracy": 0.25, "per_image": list(range(1000))}
    for i in range(ROUNDS):
        at_once(lambda: cache.set(f"k{i}", value))
        assert cache.get(f"k{i}") == value
    assert len(cache) == ROUNDS


def test_sessions_uploading_the_same_checkpoint_at_once_store_one_intact_copy(tmp_path):
    save_checkpoint(build("vgg11", "bn", width=0.125), tmp_path / "m", {"dataset": "builtin"})
    data = (tmp_path / "m.safetensors").read_bytes()
    root = tmp_path / "uploads"
    for _ in range(ROUNDS):
        for stored in root.rglob("*.*"):
            stored.unlink()
        entries = at_once(lambda: store_upload(data, "m.safetensors", root=root))
        assert len({e.path for e in entries}) == 1 and not leftovers(root)
        assert load_checkpoint(entries[0].path).sha256 == entries[0].sha256


PID_NAMES = re.compile(r"getpid\(\).*(tmp|temp)|(tmp|temp).*getpid\(\)", re.IGNORECASE)
# The places that rename: core/io.py (mkstemp in the target's folder) and the dataset download (its folder made
# by tempfile.TemporaryDirectory, renamed whole). Anything else writing then renaming must go through core.io.
RENAMING_MODULES = {"core/io.py", "core/data/download.py"}


def python_files() -> list[Path]:
    return [p for top in ("core", "ui", "views", "scripts", "benchmarks") for p in (ROOT / top).rglob("*.py")] + \
        [ROOT / "app.py"]


def test_every_temporary_file_is_named_by_tempfile_alone():
    renaming = {str(p.relative_to(ROOT)) for p in python_files() if re.search(r"os\.replace\(|os\.rename\(|"
                                                                             r"shutil\.move\(", p.read_text())}
    assert renaming == RENAMING_MODULES
    assert not [p for p in python_files() if PID_NAMES.search(p.read_text())]
    assert "mkstemp(dir=path.parent" in (ROOT / "core/io.py").read_text()
    assert "TemporaryDirectory(dir=target" in (ROOT / "core/data/download.py").read_text()


def test_json_files_round_trip_plain_and_xz_and_a_corrupt_xz_seeds_nothing(tmp_path):
    from core.cache import ResultCache
    from core.io import read_json, write_json
    record = {"robustness:abc": {"robust_accuracy": 0.25, "robust_correct": [1, 0, 1]}}
    for name in ("r.json", "r.json.xz"):
        write_json(tmp_path / name, record)
        assert read_json(tmp_path / name) == record
    assert (tmp_path / "r.json.xz").read_bytes().startswith(b"\xfd7zXZ")  # compressed, not plain text
    source = ResultCache(tmp_path / "a")
    source.set("robustness:abc", record["robustness:abc"])
    assert source.export(tmp_path / "shipped.json.xz", ("robustness:",)) == 1
    fresh = ResultCache(tmp_path / "b")
    assert fresh.seed(tmp_path / "shipped.json.xz") == 1 and fresh.get("robustness:abc") == record["robustness:abc"]
    (tmp_path / "broken.json.xz").write_bytes(b"\xfd7zXZ\x00garbage")
    assert ResultCache(tmp_path / "c").seed(tmp_path / "broken.json.xz") == 0
