"""Data: the built-in dataset, balanced subsets, users' .npz files, and clear errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core.data import DataError, balanced_subset, load_dataset, make_builtin
from core.data.sources import find_cifar10_jpeg


def test_builtin_is_deterministic_balanced_and_uint8(builtin):
    again = make_builtin()
    for split in ("train", "test", "conflict"):
        x, y = builtin.split(split)
        assert x.dtype == torch.uint8 and x.shape[1:] == (3, 32, 32)
        assert torch.equal(x, again.split(split)[0]) and torch.equal(torch.bincount(y), torch.full((10,), len(y) // 10))


def test_builtin_conflict_split_carries_the_next_class_non_robust_cue(builtin):
    """The conflict image minus its robust-only twin correlates with the non-robust pattern of y+1."""
    from core.data import synthetic

    g = torch.Generator().manual_seed(0)
    _, non_robust = synthetic.class_cues(g)
    x, y = builtin.split("conflict")
    hf = x.float() - torch.nn.functional.avg_pool2d(x.float(), 3, 1, 1)  # high-pass keeps the +-1 pattern
    score = torch.einsum("nchw,kchw->nk", hf, non_robust)
    assert (score.argmax(1) == (y + 1) % 10).float().mean() > 0.95


def test_balanced_subset_is_first_n_per_class_in_order():
    y = torch.tensor([0, 1, 0, 2, 1, 0, 2, 2, 1])
    assert balanced_subset(y, 2, 3).tolist() == [0, 1, 2, 3, 4, 6]


def test_npz_user_data(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    np.savez(tmp_path / "mine.npz", x=x, y=np.arange(20) % 4)
    data = load_dataset(f"npz:{tmp_path / 'mine.npz'}")
    assert data.split("test")[0].shape == (20, 3, 32, 32) and data.num_classes == 4
    assert torch.equal(data.split("test")[0][3], torch.from_numpy(x[3]).permute(2, 0, 1))


@pytest.mark.parametrize("arrays,match", [(dict(x=np.zeros((4, 32, 32), np.uint8), y=np.zeros(4)), "NHWC"),
                                          (dict(images=np.zeros(3)), "needs arrays"),
                                          (dict(x=np.zeros((4, 32, 32, 3), np.uint8), y=np.zeros(3)), "labels")])
def test_bad_npz_names_the_problem(tmp_path, arrays, match):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=match):
        load_dataset(f"npz:{tmp_path / 'bad.npz'}")


def test_corrupt_npz_and_missing_datasets_say_what_was_tried(tmp_path, monkeypatch):
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(DataError, match="junk.npz"):
        load_dataset(f"npz:{tmp_path / 'junk.npz'}")
    with pytest.raises(DataError, match=str(tmp_path)):
        load_dataset("cifar100", root=str(tmp_path))
    with pytest.raises(DataError, match="unknown dataset"):
        load_dataset("imagenet-21k")


@pytest.mark.skipif(find_cifar10_jpeg() is None, reason="cifar10-jpeg not present on this machine")
def test_cifar10_jpeg_decodes_with_its_own_name():
    data = load_dataset("cifar10-jpeg")
    assert data.name == "cifar10-jpeg" and data.split("train")[0].shape == (50000, 3, 32, 32)
    assert data.split("test")[1].bincount().tolist() == [1000] * 10
    assert abs(data.mean[0] - 0.4914) < 0.005


def test_torchvision_cifar10_format_is_read(tmp_path):
    """A genuine-format folder (cifar-10-batches-py) built from our own data loads through torchvision."""
    import hashlib
    import pickle

    import torchvision.datasets as tvd

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    names = [n for n, _ in tvd.CIFAR10.train_list + tvd.CIFAR10.test_list]
    for name in names:
        batch = {"data": rng.integers(0, 256, (10, 3072), dtype=np.uint8), "labels": list(range(10))}
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}))
    md5 = {name: hashlib.md5((folder / name).read_bytes()).hexdigest() for name in names}
    tvd.CIFAR10.train_list = [[n, md5[n]] for n, _ in tvd.CIFAR10.train_list]
    tvd.CIFAR10.test_list = [[n, md5[n]] for n, _ in tvd.CIFAR10.test_list]
    tvd.CIFAR10.meta = {**tvd.CIFAR10.meta, "md5": hashlib.md5((folder / "batches.meta").read_bytes()).hexdigest()}
    data = load_dataset("cifar10", root=str(tmp_path))
    assert data.split("train")[0].shape == (50, 3, 32, 32) and data.classes[0] == "c0"


# --- Getting CIFAR-10 (core.data.download): a fake archive and a fake fetch, never the network ---------------------

def tarball(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    """A .tar.gz of ``members`` (name -> bytes) and symbolic ``links`` (name -> target), names kept verbatim."""
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buffer.getvalue()


FAKE_CIFAR = {"cifar-10-batches-py/data_batch_1": b"batch one" * 1000, "cifar-10-batches-py/batches.meta": b"meta"}


def served(data: bytes, calls: list | None = None):
    """A fetch that serves ``data`` in place of any URL (recording the URLs asked for)."""
    import io

    def fetch(url: str, timeout: float):
        if calls is not None:
            calls.append(url)
        return io.BytesIO(data)
    return fetch


@pytest.fixture
def fake_cifar10(monkeypatch):
    """CIFAR10's archive description pointing at a fake tarball's md5; the network is refused outright."""
    import hashlib
    from dataclasses import replace

    from core.data import download

    data = tarball(FAKE_CIFAR)
    monkeypatch.setattr(download, "CIFAR10", replace(download.CIFAR10, md5=hashlib.md5(data).hexdigest()))
    monkeypatch.setattr(download, "open_url", lambda url, timeout: pytest.fail(f"the network was used: {url}"))
    return data


def leftovers(root) -> list[str]:
    return sorted(p.name for p in root.iterdir())


def test_download_with_a_good_checksum_unpacks_into_the_data_root(tmp_path, fake_cifar10, monkeypatch):
    from core.data import available_datasets, download_cifar10
    from core.data.download import CIFAR10

    monkeypatch.setenv("NORMSCOPE_DATA", str(tmp_path))
    calls, reports = [], []
    folder = download_cifar10(progress=lambda f, m="": reports.append(f), fetch=served(fake_cifar10, calls))
    assert calls == [CIFAR10.url] and folder == tmp_path / "cifar-10-batches-py"
    assert {f"cifar-10-batches-py/{p.name}": p.read_bytes() for p in folder.iterdir()} == FAKE_CIFAR
    assert leftovers(tmp_path) == ["cifar-10-batches-py"]  # no temporary folder or archive left behind
    assert reports == sorted(reports) and reports[-1] == 1.0 and "cifar10" in available_datasets()
    assert download_cifar10(fetch=served(b"", calls)) == folder and len(calls) == 1  # present: nothing fetched


def test_download_with_a_bad_checksum_keeps_nothing(tmp_path, fake_cifar10):
    from core.data import download_cifar10

    with pytest.raises(DataError, match="corrupt"):
        download_cifar10(tmp_path, fetch=served(fake_cifar10[:-8] + bytes(8)))  # a damaged trailer
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("failure", ["no route", "timeout"])
def test_download_offline_says_so(tmp_path, fake_cifar10, failure):
    import socket
    import urllib.error

    from core.data import download_cifar10

    def offline(url, timeout):
        raise urllib.error.URLError(socket.gaierror(-3, "Temporary failure in name resolution")) \
            if failure == "no route" else socket.timeout("timed out")
    with pytest.raises(DataError, match="offline") as e:
        download_cifar10(tmp_path, fetch=offline)
    assert "unpack it into" in str(e.value) and leftovers(tmp_path) == []


@pytest.mark.parametrize("members,links", [({"cifar-10-batches-py/../../evil.txt": b"x"}, {}),
                                           ({"/tmp/normscope-evil.txt": b"x"}, {}),
                                           ({"cifar-10-batches-py/ok": b"x"}, {"cifar-10-batches-py/link": "/etc"})])
def test_download_refuses_unsafe_archive_members(tmp_path, monkeypatch, members, links):
    import hashlib

    from core.data.download import CIFAR10, download

    data = tarball(members, links)
    archive = CIFAR10.__class__(**{**CIFAR10.__dict__, "md5": hashlib.md5(data).hexdigest()})
    root = tmp_path / "data"
    with pytest.raises(DataError, match="unsafe"):
        download(archive, root, fetch=served(data))
    assert leftovers(root) == [] and not (tmp_path / "evil.txt").exists()
    assert not any(p.name.endswith("evil.txt") for p in tmp_path.parent.iterdir())


def test_cli_data_get_cifar10(tmp_path, fake_cifar10, monkeypatch, capsys):
    import json
    import urllib.error

    from core import cli
    from core.data import download

    monkeypatch.setattr(download, "open_url", served(fake_cifar10))
    assert cli.main(["data", "get", "cifar10", "--data-root", str(tmp_path / "a"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["schema"] == "normscope.data/1" and out["path"] == str(tmp_path / "a" / "cifar-10-batches-py")

    def offline(url, timeout):
        raise urllib.error.URLError("Network is unreachable")
    monkeypatch.setattr(download, "open_url", offline)
    assert cli.main(["data", "get", "cifar10", "--data-root", str(tmp_path / "b"), "--json"]) == 2
    assert "offline" in json.loads(capsys.readouterr().out)["error"]


def test_cifar10_jpeg_env_setting_is_the_only_place_looked(tmp_path, monkeypatch):
    from core.data.sources import cifar10_jpeg_candidates

    monkeypatch.setenv("NORMSCOPE_CIFAR10_JPEG", str(tmp_path / "nowhere"))
    assert cifar10_jpeg_candidates() == [tmp_path / "nowhere"] and find_cifar10_jpeg() is None


@pytest.mark.parametrize("trained_on,source,expected", [
    ("cifar10-jpeg", "builtin", ["cifar10-jpeg"]),  # toy images would be nonsense for a CIFAR-10 model
    ("cifar10-jpeg", "cifar10", ["cifar10", "cifar10-jpeg"]),  # the same test images: the source first
    ("cifar10", "cifar10-jpeg", ["cifar10-jpeg", "cifar10"]),
    ("cifar10-jpeg", "cifar10-jpeg", ["cifar10-jpeg"]),
    ("builtin", "cifar10", ["builtin"]),
    ("cifar100", "cifar10", ["cifar100"]),
    ("unknown", "builtin", ["builtin"])])
def test_evaluation_datasets(trained_on, source, expected):
    from core.data import evaluation_datasets

    assert evaluation_datasets(trained_on, source) == expected


def test_download_into_a_read_only_folder_says_so(tmp_path, fake_cifar10, monkeypatch):
    import errno

    from core.data import download, download_cifar10

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")
    monkeypatch.setattr(download.tempfile, "TemporaryDirectory", read_only)  # a volume mounted :ro (Docker)
    with pytest.raises(DataError, match="cannot write CIFAR-10 into .*Read-only"):
        download_cifar10(tmp_path, fetch=served(fake_cifar10))


@pytest.mark.parametrize("trained_on,evaluated_on,expected", [
    ("cifar10", "cifar10-jpeg", "lossy JPEG copy"), ("cifar10-jpeg", "cifar10", "pixels differ"),
    ("cifar10-jpeg", "cifar10-jpeg", None), ("cifar10", "cifar10", None), ("unknown", "cifar10-jpeg", None),
    ("builtin", "builtin", None)])
def test_data_shift_is_said_where_the_pixels_differ(trained_on, evaluated_on, expected):
    from core.data import data_shift

    note = data_shift(trained_on, evaluated_on)
    assert (note is None) if expected is None else (expected in note)
