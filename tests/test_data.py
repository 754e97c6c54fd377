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
