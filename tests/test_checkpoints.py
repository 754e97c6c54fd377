"""Checkpoints: bit-exact round trips, inference without metadata, and every kind of bad file."""
from __future__ import annotations

import io
import json
import pickle

import pytest
import torch
import torchvision

import core.checkpoints as checkpoints
from core.checkpoints import (INPUT_NORMALIZATIONS, CheckpointError, NormalizationUnknown, load_checkpoint,
                               load_checkpoint_bytes, save_checkpoint)
from core.models import build


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build("vgg11", norm="bn", width=0.125)


def same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_round_trip_is_bit_exact_with_metadata(tmp_path, model):
    meta = save_checkpoint(model, tmp_path / "m", {"dataset": "builtin", "history": [{"epoch": 1}]})
    ckpt = load_checkpoint(tmp_path / "m.safetensors")
    assert same_weights(ckpt.model, model)
    assert ckpt.sha256 == meta["sha256"] and ckpt.dataset == "builtin" and ckpt.history == [{"epoch": 1}]
    assert ckpt.spec == model.spec and not ckpt.model.training


def test_single_safetensors_file_carries_its_metadata(tmp_path, model):
    save_checkpoint(model, tmp_path / "m", {"dataset": "builtin"})
    ckpt = load_checkpoint_bytes((tmp_path / "m.safetensors").read_bytes(), "upload.safetensors")
    assert ckpt.dataset == "builtin" and same_weights(ckpt.model, model)


def test_fp16_storage_round_trips_within_half_precision(tmp_path, model):
    save_checkpoint(model, tmp_path / "h", dtype=torch.float16)
    loaded = load_checkpoint(tmp_path / "h.safetensors").model
    x = torch.rand(8, 3, 32, 32)
    assert torch.allclose(loaded(x), model.eval()(x), atol=1e-2)


@pytest.mark.parametrize("wrap", [lambda s: s, lambda s: {"state_dict": s},
                                  lambda s: {f"module.{k}": v for k, v in s.items()}])
def test_pt_state_dicts_load_weights_only_and_infer_architecture(tmp_path, model, wrap):
    torch.save(wrap(model.backbone.state_dict()), tmp_path / "m.pt")
    ckpt = load_checkpoint(tmp_path / "m.pt", normalization=INPUT_NORMALIZATIONS["cifar10"])
    assert (ckpt.spec.arch, ckpt.spec.norm, ckpt.spec.width) == ("vgg11", "bn", 0.125)
    assert all(torch.equal(ckpt.model.backbone.state_dict()[k], v) for k, v in model.backbone.state_dict().items())


def test_torchvision_state_dict_loads_with_the_normalization_asked_not_assumed(tmp_path):
    torch.save(torchvision.models.resnet18(num_classes=10).state_dict(), tmp_path / "r.pth")
    with pytest.raises(NormalizationUnknown, match="--mean R G B --std R G B"):
        load_checkpoint(tmp_path / "r.pth")  # neither ImageNet's nor CIFAR's stats are assumed
    ckpt = load_checkpoint(tmp_path / "r.pth", normalization=INPUT_NORMALIZATIONS["imagenet"])
    assert ckpt.spec.arch == "tv_resnet18" and ckpt.spec.num_classes == 10 and ckpt.dataset == "unknown"
    assert (ckpt.spec.mean, ckpt.spec.std) == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert ckpt.meta["input_normalization"] == "given by the user"


def test_ambiguous_norm_is_named(tmp_path):
    torch.save(build("vgg11", norm="gn", width=0.125).state_dict(), tmp_path / "g.pt")
    with pytest.raises(CheckpointError, match="choose the norm"):
        load_checkpoint(tmp_path / "g.pt")  # a full state dict: its normalize.* buffers give mean/std
    from core.models import ModelSpec
    assert load_checkpoint(tmp_path / "g.pt", spec=ModelSpec("vgg11", "gn", width=0.125)).spec.norm == "gn"


class Exploit:
    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        import os
        return (os.system, (f"touch {self.marker}",))


class Custom:
    def __init__(self) -> None:
        self.weight = torch.zeros(2)


def test_malicious_pickle_is_refused_and_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"weight": Exploit(marker)}))
    with pytest.raises(CheckpointError, match="never run"):
        load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("save", ["pickle", "torch"])
def test_refused_pickle_names_the_global_and_the_safe_fix_in_one_quiet_line(tmp_path, recwarn, save):
    """torch's own text advises weights_only=False (which would run the file's code) and warns on stderr."""
    path = tmp_path / "evil.pt"
    obj = {"weight": Exploit(tmp_path / "pwned")}
    path.write_bytes(pickle.dumps(obj)) if save == "pickle" else torch.save(obj, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "system" in message and "torch.save(model.state_dict(), path)" in message and "safetensors" in message
    assert "weights_only" not in message and "False" not in message and "add_safe_globals" not in message
    assert "\n" not in message and not recwarn.list


def test_refused_custom_class_is_named(tmp_path):
    buffer = io.BytesIO()
    torch.save({"model": Custom()}, buffer)
    with pytest.raises(CheckpointError, match="Custom") as info:
        load_checkpoint_bytes(buffer.getvalue(), "custom.pt")
    assert "weights_only" not in str(info.value)


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".safetensors"])
def test_empty_file_says_so(tmp_path, suffix):
    (tmp_path / f"m{suffix}").write_bytes(b"")
    with pytest.raises(CheckpointError, match="the file is empty"):
        load_checkpoint(tmp_path / f"m{suffix}")


@pytest.mark.parametrize("name", ["model_v1.5", "model_v1.5.safetensors", "model_v1.5.json", "model_v1.5.pt"])
def test_save_keeps_dots_in_the_name(tmp_path, model, name):
    save_checkpoint(model, tmp_path / "runs" / name)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["model_v1.5.json", "model_v1.5.safetensors"]
    assert same_weights(load_checkpoint(tmp_path / "runs" / "model_v1.5.safetensors").model, model)


def test_truncated_and_garbage_safetensors(tmp_path, model):
    save_checkpoint(model, tmp_path / "m")
    data = (tmp_path / "m.safetensors").read_bytes()
    for bad in (data[: len(data) // 2], b"\x00" * 100, b"not a checkpoint"):
        with pytest.raises(CheckpointError, match="safetensors"):
            load_checkpoint_bytes(bad, "x.safetensors")


def test_wrong_architecture_lists_the_mismatch(tmp_path, model):
    from core.models import ModelSpec
    save_checkpoint(model, tmp_path / "m")
    with pytest.raises(CheckpointError, match="does not fit resnet18"):
        load_checkpoint(tmp_path / "m.safetensors", spec=ModelSpec("resnet18", "bn", width=0.125))
    with pytest.raises(CheckpointError, match="shape mismatches"):
        load_checkpoint(tmp_path / "m.safetensors", spec=ModelSpec("vgg11", "bn", width=0.25))


def test_unknown_keys_and_nan_weights(tmp_path, model):
    state = model.backbone.state_dict()
    torch.save({**state, "extra.weight": torch.zeros(3)}, tmp_path / "u.pt")
    with pytest.raises(CheckpointError, match="unexpected keys"):
        load_checkpoint(tmp_path / "u.pt")
    state["head.weight"] = state["head.weight"].clone().fill_(float("nan"))
    torch.save(state, tmp_path / "n.pt")
    with pytest.raises(CheckpointError, match="NaN"):
        load_checkpoint(tmp_path / "n.pt")


def test_unknown_architecture_and_unrecognised_keys(tmp_path, model):
    meta = save_checkpoint(model, tmp_path / "m")
    side = tmp_path / "m.json"
    side.write_text(json.dumps({**meta, "model": {**meta["model"], "arch": "lenet5"}}))
    with pytest.raises(CheckpointError, match="unknown architecture 'lenet5'"):
        load_checkpoint(tmp_path / "m.safetensors")
    torch.save({"w": torch.zeros(2)}, tmp_path / "odd.pt")
    with pytest.raises(CheckpointError, match="not recognised"):
        load_checkpoint(tmp_path / "odd.pt")


def test_sha_mismatch_and_bad_sidecar(tmp_path, model):
    meta = save_checkpoint(model, tmp_path / "m")
    (tmp_path / "m.json").write_text(json.dumps({**meta, "sha256": "0" * 64}))
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(tmp_path / "m.safetensors")
    (tmp_path / "m.json").write_text("{broken")
    with pytest.raises(CheckpointError, match="JSON"):
        load_checkpoint(tmp_path / "m.safetensors")


def test_huge_file_and_a_file_of_no_format(tmp_path, model, monkeypatch):
    save_checkpoint(model, tmp_path / "m")
    monkeypatch.setattr(checkpoints, "MAX_CHECKPOINT_BYTES", 1000)
    with pytest.raises(CheckpointError, match="limit"):
        load_checkpoint(tmp_path / "m.safetensors")
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        load_checkpoint_bytes(b"x", "model.onnx")


def test_non_tensor_pt_is_refused(tmp_path):
    buffer = io.BytesIO()
    torch.save({"epoch": 3, "weights": [1, 2]}, buffer)
    with pytest.raises(CheckpointError, match="state dict of tensors"):
        load_checkpoint_bytes(buffer.getvalue(), "m.pt")


def test_malformed_pickle_memo_is_a_checkpoint_error():
    """torch's weights-only unpickler raises a bare KeyError on a bad memo reference."""
    bad = b"\x80\x04h\x05."  # protocol 4: BINGET of a memo slot that was never stored
    with pytest.raises(CheckpointError, match="never run"):
        load_checkpoint_bytes(bad, "memo.pt")


def torch_file(obj, legacy: bool = False) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer, _use_new_zipfile_serialization=not legacy)
    return buffer.getvalue()


@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize("name", ["m.th", "m.pth.tar", "m.tar", "m.ckpt", "m.bin", "m.pt", "m.pth", "m.safetensors",
                                  "m"])
def test_the_format_is_read_from_the_bytes_whatever_the_name(tmp_path, model, name, legacy):
    """A torch.save file (zip, or the legacy pickle of PyTorch < 1.6) and safetensors load under any name."""
    from safetensors.torch import save
    state = model.backbone.state_dict()
    for data, kind in ((torch_file(state, legacy), "legacy" if legacy else "zip"), (save(state), "safetensors")):
        (tmp_path / name).write_bytes(data)
        ckpt = load_checkpoint(tmp_path / name, normalization=INPUT_NORMALIZATIONS["cifar10"])
        assert same_weights(ckpt.model.backbone, model.backbone) and kind in ckpt.meta["file_format"]


@pytest.mark.parametrize("data,what", [(b"GIF89a" + bytes(200), "not a checkpoint"),
                                       (b"{\"weights\": [1, 2]}", "not a checkpoint"),
                                       (b"\x80", "not a checkpoint"), (b"\x80\x02K", "weights-only")])
def test_a_file_of_no_known_format_gets_one_line(data, what):
    with pytest.raises(CheckpointError, match=what) as info:
        load_checkpoint_bytes(data, "model.th")
    assert "\n" not in str(info.value)


def test_the_pre_0_1_10_tar_format_is_refused_without_running_it(tmp_path):
    """torch loads it only with weights_only=False: its pickles would run."""
    import tarfile
    with tarfile.open(tmp_path / "old.tar", "w", format=tarfile.PAX_FORMAT) as tar:
        for member in ("sys_info", "pickle", "storages", "tensors"):
            (tmp_path / member).write_bytes(pickle.dumps({"weight": Exploit(tmp_path / "pwned")}))
            tar.add(tmp_path / member, arcname=member)
    assert checkpoints.file_format((tmp_path / "old.tar").read_bytes()) == checkpoints.TORCH_TAR
    with pytest.raises(CheckpointError, match=r"tar format .* \(never done here\)") as info:
        load_checkpoint(tmp_path / "old.tar")
    assert "\n" not in str(info.value) and not (tmp_path / "pwned").exists()


def test_a_truncated_legacy_file_is_one_clear_line(model):
    data = torch_file({"state_dict": model.backbone.state_dict(), "best_prec1": 91.0}, legacy=True)
    for cut in (len(data) // 2, 40, len(data) - 3):
        with pytest.raises(CheckpointError, match="Was it truncated") as info:
            load_checkpoint_bytes(data[:cut], "resnet20.th")
        assert "\n" not in str(info.value)


def test_a_pickled_module_in_a_ckpt_is_refused_and_named(tmp_path, model):
    marker = tmp_path / "pwned"
    data = torch_file({"state_dict": model.backbone.state_dict(), "module": model, "hook": Exploit(marker)})
    with pytest.raises(CheckpointError, match="would import") as info:
        load_checkpoint_bytes(data, "epoch=3-step=100.ckpt")
    assert "\n" not in str(info.value) and not marker.exists()


def test_legacy_batchnorm_without_counters_loads_and_says_so(model):
    """BatchNorm state saved before PyTorch 0.4.1 has no num_batches_tracked."""
    state = {k: v for k, v in model.backbone.state_dict().items() if not k.endswith("num_batches_tracked")}
    ckpt = load_checkpoint_bytes(torch_file(state, legacy=True), "old.pth",
                                 normalization=INPUT_NORMALIZATIONS["cifar10"])
    layers = sum(k.endswith("running_var") for k in state)
    assert ckpt.meta["legacy_batchnorm"].startswith(f"{layers} BatchNorm layers") and layers == 8
    assert all(v == 0 for k, v in ckpt.model.state_dict().items() if k.endswith("num_batches_tracked"))
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(ckpt.model(x), model.eval()(x))
    whole = load_checkpoint_bytes(torch_file(model.backbone.state_dict()), "new.pth",
                                  normalization=INPUT_NORMALIZATIONS["cifar10"])
    assert "legacy_batchnorm" not in whole.meta
