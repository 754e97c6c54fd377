"""core.catalog: listing zoo / uploaded / trained checkpoints, and validated, content-addressed uploads."""
from __future__ import annotations

import io
import json

import pytest
import torch

from core.catalog import (SHIPPED_ZOO, ZOO_INDEX, list_checkpoints, safe_stem, snapshots, store_upload, uploads_dir,
                          zoo_groups)
from core.checkpoints import CheckpointError, save_checkpoint
from core.models import build
from core.findings import comparable_pairs
from core.zoo import LANDSCAPE_GROUP


@pytest.fixture
def pair_zoo(tmp_path, trained_pair):
    """A zoo folder holding the BN / no-BN pair (files pair-bn, pair-none)."""
    folder = tmp_path / "zoo"
    for norm, ckpt in trained_pair.items():
        save_checkpoint(ckpt.model, folder / f"pair-{norm}", {"dataset": "builtin", "history": ckpt.history,
                                                              "final_metrics": ckpt.meta["final_metrics"]})
    return folder


def test_lists_zoo_with_metadata_and_filters_by_dataset(pair_zoo, tmp_path):
    entries = list_checkpoints(tmp_path / "cache", pair_zoo)
    assert [(e.name, e.source, e.norm, e.dataset) for e in entries] == [
        ("pair-bn", "zoo", "bn", "builtin"), ("pair-none", "zoo", "none", "builtin")]
    assert entries[0].history and "robust_accuracy" in entries[0].final_metrics
    assert list_checkpoints(tmp_path / "cache", pair_zoo, dataset="cifar10-jpeg") == []


def test_upload_is_stored_once_and_joins_the_catalog(pair_zoo, tmp_path):
    root, data = tmp_path / "cache", (pair_zoo / "pair-bn.safetensors").read_bytes()
    entry = store_upload(data, "my model.v2.safetensors", root=root)
    again = store_upload(data, "my model.v2.safetensors", root=root)
    assert entry == again and entry.source == "upload" and entry.dataset == "builtin" and entry.norm == "bn"
    assert len(list(uploads_dir(root).glob("*.safetensors"))) == 1
    assert [e.label for e in list_checkpoints(root, pair_zoo) if e.source == "upload"] == [entry.label]
    assert entry.name == "my model.v2" and entry.label.startswith("my model.v2 (upload ")


def test_malformed_pickle_is_a_checkpoint_error(tmp_path):
    import pickle
    with pytest.raises(CheckpointError):
        store_upload(pickle.dumps({"a": [1, 2]}, protocol=4) + b"junk", "memo.pt", root=tmp_path)


def test_pt_state_dict_upload_needs_spec_for_ambiguous_norm(tmp_path):
    buffer = io.BytesIO()
    torch.save(build("vgg11", norm="gn", width=0.125).backbone.state_dict(), buffer)
    with pytest.raises(CheckpointError, match="IN, LN or GN"):
        store_upload(buffer.getvalue(), "gn.pt", root=tmp_path)
    from core.models import ModelSpec
    from core.checkpoints import INPUT_NORMALIZATIONS
    entry = store_upload(buffer.getvalue(), "gn.pt", ModelSpec("vgg11", "gn", width=0.125), "builtin", tmp_path,
                         normalization=INPUT_NORMALIZATIONS["cifar10"])
    assert (entry.arch, entry.norm, entry.dataset) == ("vgg11", "gn", "builtin")


@pytest.mark.parametrize("data", [b"", b"garbage" * 10, b"\x08" + b"\x00" * 7 + b"{}"])
def test_bad_uploads_raise_checkpoint_error_and_store_nothing(tmp_path, data):
    with pytest.raises(CheckpointError):
        store_upload(data, "bad.safetensors", root=tmp_path)
    assert not list(uploads_dir(tmp_path).glob("*"))


def test_zoo_folder_follows_normscope_zoo(pair_zoo, tmp_path, monkeypatch):
    monkeypatch.setenv("NORMSCOPE_ZOO", str(pair_zoo))
    assert [e.name for e in list_checkpoints(tmp_path / "cache")] == ["pair-bn", "pair-none"]


def test_safe_stem_drops_dots_and_path_parts():
    assert safe_stem("../../etc/pass wd.v1.pt") == "pass_wd_v1"


def test_snapshots_are_listed_oldest_first_with_their_epoch(tmp_path, builtin):
    from core.train import preset, train

    out = tmp_path / "run"
    train(preset("tiny", arch="vgg11", norm="bn", epochs=2, train_subset=500, probe_per_class=1, probe_steps=1,
                 snapshot_every=1), out, dataset=builtin)
    (entry,) = list_checkpoints(tmp_path / "cache", zoo=tmp_path)
    found = snapshots(entry)
    assert [s.name for s in found] == ["run @ epoch 1", "run @ epoch 2"] and {s.source for s in found} == {"snapshot"}
    assert found[-1].sha256 != entry.sha256  # snapshots are fp16 copies, the run itself fp32


def write_index(folder, groups: dict[str, str]) -> None:
    """A zoo index as scripts/build_zoo.py writes it (only the fields the catalog reads)."""
    models = [{"name": name, "file": f"{name}.safetensors", "group": group} for name, group in groups.items()]
    (folder / ZOO_INDEX).write_text(json.dumps({"models": models}))


def paired(entries) -> set[str]:
    return {e.name for p in comparable_pairs(entries) for e in (p.treated, p.control)}


def test_zoo_groups_come_from_the_index_and_the_landscape_runs_stay_out_of_the_scoreboard(pair_zoo, tmp_path,
                                                                                          trained_pair):
    for norm, ckpt in trained_pair.items():  # a second BN / norm-free pair of the same architecture: App. I's runs
        save_checkpoint(ckpt.model, pair_zoo / f"ls-{norm}", {"dataset": "builtin"})
    assert paired(list_checkpoints(tmp_path / "cache", pair_zoo)) == {
        "pair-bn", "pair-none", "ls-bn", "ls-none"}  # no index: no groups, nothing to tell them apart
    write_index(pair_zoo, {"pair-bn": "vgg11-norms", "pair-none": "vgg11-norms",
                      "ls-bn": LANDSCAPE_GROUP, "ls-none": LANDSCAPE_GROUP})
    entries = list_checkpoints(tmp_path / "cache", pair_zoo)
    assert {e.name: e.group for e in entries} == {"ls-bn": "landscape", "ls-none": "landscape",
                                                  "pair-bn": "vgg11-norms", "pair-none": "vgg11-norms"}
    assert paired(entries) == {"pair-bn", "pair-none"}


@pytest.mark.parametrize("index", ["{not json", '{"models": [{"file": "pair-bn.safetensors"}]}', "[1, 2]"])
def test_an_unreadable_zoo_index_leaves_the_groups_empty_and_the_listing_whole(pair_zoo, tmp_path, index):
    (pair_zoo / ZOO_INDEX).write_text(index)
    assert zoo_groups(pair_zoo) == {}
    listed = list_checkpoints(tmp_path / "cache", pair_zoo)
    assert [(e.name, e.group) for e in listed] == [("pair-bn", ""), ("pair-none", "")]


def test_the_shipped_landscape_runs_are_grouped_and_none_enters_the_scoreboard(tmp_path):
    from core.zoo import ZOO_PLAN

    planned = {e.name for e in ZOO_PLAN if e.group == LANDSCAPE_GROUP}
    entries = list_checkpoints(tmp_path, SHIPPED_ZOO)
    shipped = {e.name for e in entries if e.group == LANDSCAPE_GROUP}
    assert shipped == planned & {e.name for e in entries}  # every shipped one is grouped by the index
    assert not shipped & paired(entries)


def test_probe_images_come_from_the_training_config():
    from core.catalog import probe_images
    assert probe_images({"train_config": {"probe_per_class": 20}, "model": {"num_classes": 10}}) == 200
    assert probe_images({"train_config": {"epochs": 3}, "model": {"num_classes": 100}}) == 10_000  # its default
    assert probe_images({"model": {"num_classes": 10}}) == 0  # an upload: nothing recorded
