"""Checkpoints as people have them: each published layout, saved by a re-implementation of that repository's own
model class (random init, random BN statistics) in its own wrapper, loads through core.checkpoints and computes
the original's outputs; the input normalization is read from the file or asked for, never assumed.

The reference classes (tests/reference_models/) are copied from the repositories' files (kuangliu/pytorch-cifar
models/*.py, chenyaofo/pytorch-cifar-models pytorch_cifar_models/*.py, RobustBench
robustbench/model_zoo/architectures/*.py and model_zoo/cifar10.py, akamaster/pytorch_resnet_cifar10 resnet.py),
reduced to what builds the model; they share no code with core.models.
"""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save as save_safetensors

from core.checkpoints import (INPUT_NORMALIZATIONS, CheckpointError, InputNormalization, NormalizationUnknown,
                              load_checkpoint_bytes)
from core.models import ModelSpec
from core.models.infer import infer_model_spec
from reference_models.chenyaofo import CYVGG, CifarResNet, CYBasicBlock, cy_make_layers
from reference_models.files import akamaster_file, randomized, torch_bytes, with_module_prefix
from reference_models.kuangliu import (KL_VGG, KLBasicBlock, KLBottleneck, KLDenseBottleneck, KLDenseNet,
                                       KLMobileNetV2, KLPreActBlock, KLPreActResNet, KLResNet, KLVGG)
from reference_models.robustbench import Rice2020OverfittingNetL2, RBWideResNet, RiceWRN, Wong2020FastNet

CIFAR = INPUT_NORMALIZATIONS["cifar10"]
KUANGLIU_STATS = INPUT_NORMALIZATIONS["cifar10-kuangliu"]


# ---- helpers ---------------------------------------------------------------------------------------------------
def assert_same_outputs(loaded, original, normalization: InputNormalization | None = None) -> None:
    """Loaded takes [0, 1] pixels; the original takes what its training script fed it: normalized pixels, or raw
    pixels where it normalizes inside (``normalization`` None)."""
    torch.manual_seed(1)
    x = torch.rand(2, 3, 32, 32)
    fed = x if normalization is None else (x - torch.tensor(normalization.mean).view(1, 3, 1, 1)) / torch.tensor(
        normalization.std).view(1, 3, 1, 1)
    with torch.no_grad():
        expected, got = original(fed), loaded(x)
    assert expected.abs().max() > 0.1  # a signal to compare, not a vanishing one
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


KUANGLIU = {
    "resnet18": (lambda: KLResNet(KLBasicBlock, [2, 2, 2, 2]), "resnet18"),
    "resnet34": (lambda: KLResNet(KLBasicBlock, [3, 4, 6, 3]), "resnet34"),
    "resnet50": (lambda: KLResNet(KLBottleneck, [3, 4, 6, 3]), "resnet50"),
    "vgg11": (lambda: KLVGG("VGG11"), "vgg11"),
    "vgg13": (lambda: KLVGG("VGG13"), "vgg13"),
    "vgg16": (lambda: KLVGG("VGG16"), "vgg16"),
    "vgg19": (lambda: KLVGG("VGG19"), "vgg19"),
    "densenet121": (lambda: KLDenseNet(KLDenseBottleneck, [6, 12, 24, 16], growth_rate=32), "kuangliu_densenet121"),
    "mobilenetv2": (lambda: KLMobileNetV2(), "kuangliu_mobilenetv2"),
}


@pytest.mark.parametrize("name", list(KUANGLIU))
def test_kuangliu_checkpoints_load_and_compute_the_original(name):
    """main.py saves {'net': net.state_dict(), 'acc': acc, 'epoch': epoch}; under DataParallel keys get 'module.'."""
    make, arch = KUANGLIU[name]
    original = randomized(make())
    state = original.state_dict()
    data = torch_bytes({"net": with_module_prefix(state) if name == "resnet18" else state, "acc": 93.1, "epoch": 199})
    if name == "resnet18":
        with pytest.raises(NormalizationUnknown, match="0.2023"):  # asked, with the repository's own stats as hint
            load_checkpoint_bytes(data, "ckpt.pth")
    ckpt = load_checkpoint_bytes(data, "ckpt.pth", normalization=KUANGLIU_STATS)
    assert (ckpt.spec.arch, ckpt.spec.norm, ckpt.spec.num_classes) == (arch, "bn", 10)
    assert ckpt.meta["layout"].startswith("kuangliu/pytorch-cifar") and ckpt.dataset == "unknown"
    assert_same_outputs(ckpt.model, original, KUANGLIU_STATS)
    assert ckpt.model.features(torch.rand(1, 3, 32, 32)).shape[1] == ckpt.model.backbone.head.in_features


def test_kuangliu_preact_resnet18_is_ambiguous_then_loads_as_chosen():
    """Its keys are those of RobustBench's PreActBlock net too, which feeds the shortcut the raw input."""
    original = randomized(KLPreActResNet(KLPreActBlock, [2, 2, 2, 2]))
    data = torch_bytes({"net": with_module_prefix(original.state_dict()), "acc": 94.0, "epoch": 199})
    with pytest.raises(CheckpointError, match="kuangliu_preact_resnet18 and robustbench_preact_resnet18"):
        load_checkpoint_bytes(data, "preact.pth", normalization=CIFAR)
    ckpt = load_checkpoint_bytes(data, "preact.pth", ModelSpec("kuangliu_preact_resnet18"), normalization=CIFAR)
    assert_same_outputs(ckpt.model, original, CIFAR)
    wrong = load_checkpoint_bytes(data, "preact.pth", ModelSpec("robustbench_preact_resnet18"), normalization=CIFAR)
    assert not torch.allclose(wrong.model(torch.rand(2, 3, 32, 32)), ckpt.model(torch.rand(2, 3, 32, 32)))


CHENYAOFO = {f"resnet{d}": (lambda n=n: CifarResNet(CYBasicBlock, [n] * 3), f"resnet{d}")
             for d, n in ((20, 3), (32, 5), (44, 7), (56, 9))}
CHENYAOFO |= {f"vgg{d}_bn": (lambda cfg=cfg: CYVGG(cy_make_layers(KL_VGG[cfg])), f"chenyaofo_vgg{d}_bn")
              for d, cfg in ((11, "VGG11"), (13, "VGG13"), (16, "VGG16"), (19, "VGG19"))}


@pytest.mark.parametrize("name", list(CHENYAOFO))
def test_chenyaofo_checkpoints_load_and_compute_the_original(name):
    """Its released weights are plain state dicts (torch.hub's load_state_dict_from_url)."""
    make, arch = CHENYAOFO[name]
    original = randomized(make())
    ckpt = load_checkpoint_bytes(torch_bytes(original.state_dict()), f"cifar10_{name}.pt", normalization=CIFAR)
    assert (ckpt.spec.arch, ckpt.spec.num_classes) == (arch, 10)
    assert ckpt.meta["layout"].startswith("chenyaofo/pytorch-cifar-models")
    assert_same_outputs(ckpt.model, original, CIFAR)


def test_chenyaofo_resnet_with_100_classes_and_safetensors():
    original = randomized(CifarResNet(CYBasicBlock, [3, 3, 3], num_classes=100))
    ckpt = load_checkpoint_bytes(save_safetensors(original.state_dict()), "r20.safetensors", normalization=CIFAR)
    assert (ckpt.spec.arch, ckpt.spec.num_classes) == ("resnet20", 100)
    assert_same_outputs(ckpt.model, original, CIFAR)


def test_robustbench_wrn_28_10_reads_its_normalization_buffers():
    """RobustBench checkpoints: {'state_dict': module.-prefixed keys}; TRADES' unused sub_block1 is carried along."""
    original = randomized(RiceWRN())
    data = torch_bytes({"state_dict": with_module_prefix(original.state_dict())})
    ckpt = load_checkpoint_bytes(data, "Rice2020Overfitting.pt")  # no question: mu/sigma are in the file
    assert (ckpt.spec.arch, ckpt.spec.width) == ("wrn28_10", 1.0)
    assert ckpt.spec.std == pytest.approx((0.2471, 0.2435, 0.2616))
    assert ckpt.meta["input_normalization"] == "from the file"
    assert_same_outputs(ckpt.model, original)  # the original normalizes inside: both take raw pixels
    with pytest.raises(CheckpointError, match="records the input normalization"):  # a contradicting answer
        load_checkpoint_bytes(data, "Rice2020Overfitting.pt", normalization=INPUT_NORMALIZATIONS["imagenet"])


@pytest.mark.parametrize("depth,sub_block1,arch", [(34, True, "wrn34_10"), (28, False, "wrn28_10")])
def test_robustbench_wrn_keys_are_inferred(depth, sub_block1, arch):
    with torch.device("meta"):  # shapes only: WRN-34-10 has 46M parameters
        state = RBWideResNet(depth=depth, widen_factor=10, sub_block1=sub_block1).state_dict()
    assert infer_model_spec(state) == ModelSpec(arch, "bn", 10, 1.0)


@pytest.mark.parametrize("net,arch", [(Wong2020FastNet, "robustbench_preact_resnet18"),
                                      (Rice2020OverfittingNetL2, "robustbench_preact_resnet18_bn")])
def test_robustbench_preact_resnet18_loads_with_its_buffers(net, arch):
    original = randomized(net())
    ckpt = load_checkpoint_bytes(torch_bytes(original.state_dict()), "preact.pt")
    assert ckpt.spec.arch == arch and ckpt.spec.mean == pytest.approx((0.4914, 0.4822, 0.4465))
    assert_same_outputs(ckpt.model, original)


def test_madry_robustness_wrapper_reads_model_and_normalizer():
    """MadryLab robustness saves {'model': {module.model.*, module.attacker.model.*, module.normalizer.*}, ...}."""
    original = randomized(KLResNet(KLBasicBlock, [2, 2, 2, 2]))
    inner = {f"model.{k}": v for k, v in original.state_dict().items()}
    inner |= {f"attacker.{k}": v for k, v in inner.items()}
    stats = KUANGLIU_STATS
    for prefix in ("normalizer.", "attacker.normalize."):
        inner[prefix + "new_mean"] = torch.tensor(stats.mean).view(3, 1, 1)
        inner[prefix + "new_std"] = torch.tensor(stats.std).view(3, 1, 1)
    data = torch_bytes({"model": with_module_prefix(inner), "optimizer": {"lr": torch.tensor(0.1)}, "epoch": 150})
    ckpt = load_checkpoint_bytes(data, "cifar_linf_8.pt")
    assert ckpt.spec.arch == "resnet18" and ckpt.spec.std == pytest.approx(stats.std)
    assert_same_outputs(ckpt.model, original, stats)


@pytest.mark.parametrize("wrapper", ["state_dict", "model", "model_state_dict", "net"])
def test_every_wrapper_and_prefix(wrapper):
    original = randomized(CifarResNet(CYBasicBlock, [3, 3, 3]))
    for state in (original.state_dict(), with_module_prefix(original.state_dict())):
        ckpt = load_checkpoint_bytes(torch_bytes({wrapper: state, "epoch": 3}), "w.pt", normalization=CIFAR)
        assert ckpt.spec.arch == "resnet20"
        assert_same_outputs(ckpt.model, original, CIFAR)


def test_stored_upload_reloads_without_asking_again(tmp_path):
    """Once answered, the normalization is part of the saved metadata; the mapped keys are NormScope's."""
    from core.checkpoints import load_checkpoint, save_checkpoint
    original = randomized(KLResNet(KLBasicBlock, [2, 2, 2, 2]))
    ckpt = load_checkpoint_bytes(torch_bytes({"net": original.state_dict()}), "k.pth", normalization=KUANGLIU_STATS)
    save_checkpoint(ckpt.model, tmp_path / "k", {k: ckpt.meta[k] for k in ("layout", "input_normalization")})
    again = load_checkpoint(tmp_path / "k.safetensors")
    assert again.spec == ckpt.spec and again.meta["layout"] == ckpt.meta["layout"]
    assert_same_outputs(again.model, original, KUANGLIU_STATS)


def test_the_normalization_question_names_the_choices_and_bad_answers_are_refused():
    original = randomized(CifarResNet(CYBasicBlock, [3, 3, 3]))
    data = torch_bytes(original.state_dict())
    with pytest.raises(NormalizationUnknown) as info:
        load_checkpoint_bytes(data, "r.pt")
    message = str(info.value)
    assert "not guessed" in message and "chenyaofo" in message and "\n" not in message
    assert all(name in message for name in INPUT_NORMALIZATIONS)
    with pytest.raises(ValueError, match="3 values"):
        InputNormalization((0.5, 0.5), (0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="std positive"):
        InputNormalization((0.5, 0.5, 0.5), (0.5, 0.0, 0.5))
    bad = {**original.state_dict(), "mu": torch.zeros(1, 3, 1, 1), "sigma": torch.zeros(1, 3, 1, 1)}
    with pytest.raises(CheckpointError, match="mu/sigma buffers"):
        load_checkpoint_bytes(torch_bytes(bad), "r.pt")


def test_a_file_that_cannot_load_fails_before_any_question():
    state = randomized(CifarResNet(CYBasicBlock, [3, 3, 3])).state_dict()
    del state["fc.bias"]
    with pytest.raises(CheckpointError, match="missing keys") as info:
        load_checkpoint_bytes(torch_bytes(state), "r.pt")
    assert not isinstance(info.value, NormalizationUnknown)


def test_cli_asks_for_mean_and_std_and_takes_them(tmp_path, capsys):
    from core.cli import main
    original = randomized(CifarResNet(CYBasicBlock, [3, 3, 3]))
    path = tmp_path / "cifar10_resnet20.pt"
    path.write_bytes(torch_bytes(original.state_dict()))
    assert main(["info", str(path), "--json"]) == 2
    assert "--mean R G B --std R G B" in json.loads(capsys.readouterr().out)["error"]
    assert main(["info", str(path), "--json", "--mean", "0.5", "0.5", "0.5", "--std", "0.25", "0.25", "0.25"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["model"]["arch"] == "resnet20" and info["model"]["std"] == [0.25] * 3 and info["dataset"] == "unknown"
    assert main(["info", str(path), "--json", "--mean", "0.5", "0.5", "0.5"]) == 2  # one without the other
    assert "--std" in json.loads(capsys.readouterr().out)["error"]


# ---- akamaster/pytorch_resnet_cifar10 (tests/reference_models/akamaster.py) ----------------------------------
IMAGENET = INPUT_NORMALIZATIONS["imagenet"]


@pytest.mark.parametrize("depth", [20, 32, 44, 56, 110])
def test_akamaster_option_a_resnets_load_and_compute_the_original(depth):
    from reference_models.akamaster import resnet
    original = randomized(resnet(depth))
    data = akamaster_file(original)
    with pytest.raises(NormalizationUnknown, match=r"akamaster.*ImageNet's mean \(0.485"):
        load_checkpoint_bytes(data, f"resnet{depth}-12fca82f.th")
    ckpt = load_checkpoint_bytes(data, f"resnet{depth}-12fca82f.th", normalization=IMAGENET)
    assert (ckpt.spec.arch, ckpt.spec.norm, ckpt.spec.num_classes) == (f"resnet{depth}a", "bn", 10)
    assert ckpt.meta["layout"] == "akamaster/pytorch_resnet_cifar10 ResNet (option-A shortcuts)"
    assert ckpt.meta["legacy_batchnorm"].startswith(f"{3 * (depth - 2) // 6 * 2 + 1} BatchNorm layers")
    assert_same_outputs(ckpt.model, original, IMAGENET)
    assert sum(p.numel() for p in ckpt.model.parameters()) == sum(p.numel() for p in original.parameters())


def test_akamaster_option_b_is_the_plain_resnet():
    from reference_models.akamaster import BlockB, ResNet
    original = randomized(ResNet(BlockB, [3, 3, 3]))
    ckpt = load_checkpoint_bytes(akamaster_file(original, legacy=False), "resnet20b.th", normalization=IMAGENET)
    assert ckpt.spec.arch == "resnet20" and "option-B" in ckpt.meta["layout"]
    assert_same_outputs(ckpt.model, original, IMAGENET)


def test_an_option_a_file_with_a_block_missing_is_one_clear_line():
    from reference_models.akamaster import resnet
    state = randomized(resnet(20)).state_dict()
    cut = {k: v for k, v in state.items() if not k.startswith("layer3.2.")}
    with pytest.raises(CheckpointError, match=r"\[3, 3, 2\] blocks per stage .* is a block missing") as info:
        load_checkpoint_bytes(torch_bytes({"state_dict": with_module_prefix(cut)}), "resnet20.th",
                              normalization=IMAGENET)
    assert "\n" not in str(info.value)
    del state["layer3.2.bn2.weight"]
    with pytest.raises(CheckpointError, match="1 missing keys"):
        load_checkpoint_bytes(torch_bytes(state), "resnet20.th", normalization=IMAGENET)


def test_option_a_and_no_shortcuts_are_not_told_apart_from_native_keys():
    """Neither has shortcut weights: the user chooses, and each choice computes its own model."""
    from core.models import build
    model = build("resnet20a", norm="bn", width=0.5)
    randomized(model)
    data = torch_bytes(model.backbone.state_dict())
    with pytest.raises(CheckpointError, match="resnet20 with no shortcuts .* or resnet20a"):
        load_checkpoint_bytes(data, "mine.pt", normalization=CIFAR)
    chosen = load_checkpoint_bytes(data, "mine.pt", ModelSpec("resnet20a", "bn", width=0.5), normalization=CIFAR)
    plain = load_checkpoint_bytes(data, "mine.pt", ModelSpec("resnet20", "bn", width=0.5, shortcut=False),
                                  normalization=CIFAR)
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(chosen.model(x), model(x))
    assert not torch.allclose(plain.model(x), model(x))


# ---- other wrappers people save ------------------------------------------------------------------------------
def test_lightning_checkpoints_load_with_model_or_net_prefix():
    """A LightningModule's .ckpt: its network under self.model or self.net, optimizer and scheduler states beside."""
    original = randomized(KLResNet(KLBasicBlock, [2, 2, 2, 2]))
    optimizer = torch.optim.SGD(original.parameters(), lr=0.1, momentum=0.9)
    original(torch.rand(2, 3, 32, 32)).sum().backward()
    optimizer.step()
    original.eval()
    for prefix in ("model.", "net."):
        ckpt_obj = {"epoch": 9, "global_step": 3910, "pytorch-lightning_version": "2.4.0",
                    "state_dict": {prefix + k: v for k, v in original.state_dict().items()},
                    "loops": {"fit_loop": {"epoch_progress": {"current": {"completed": 9}}}}, "callbacks": {},
                    "optimizer_states": [optimizer.state_dict()], "lr_schedulers": [{"last_epoch": 9}],
                    "hparams_name": "kwargs", "hyper_parameters": {"lr": 0.1, "arch": "resnet18"}}
        ckpt = load_checkpoint_bytes(torch_bytes(ckpt_obj), "epoch=9-step=3910.ckpt", normalization=KUANGLIU_STATS)
        assert ckpt.spec.arch == "resnet18"
        assert_same_outputs(ckpt.model, original, KUANGLIU_STATS)


def test_training_checkpoints_load_their_model_and_ignore_the_optimizer():
    original = randomized(CifarResNet(CYBasicBlock, [3, 3, 3]))
    optimizer = torch.optim.Adam(original.parameters())
    original(torch.rand(2, 3, 32, 32)).sum().backward()
    optimizer.step()
    original.eval()
    data = torch_bytes({"model": original.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 120,
                        "scheduler": {"last_epoch": 120}})
    ckpt = load_checkpoint_bytes(data, "checkpoint_120.pth.tar", normalization=CIFAR)
    assert ckpt.spec.arch == "resnet20"
    assert_same_outputs(ckpt.model, original, CIFAR)


def test_hugging_face_style_pytorch_model_bin(tmp_path):
    from core.checkpoints import load_checkpoint
    original = randomized(KLVGG("VGG16"))
    (tmp_path / "pytorch_model.bin").write_bytes(torch_bytes(original.state_dict()))
    ckpt = load_checkpoint(tmp_path / "pytorch_model.bin", normalization=KUANGLIU_STATS)
    assert ckpt.spec.arch == "vgg16" and ckpt.meta["file_format"] == "torch.save (zip)"
    assert_same_outputs(ckpt.model, original, KUANGLIU_STATS)


def test_cli_reads_a_published_file_under_its_own_name(tmp_path, capsys):
    from core.cli import main
    from reference_models.akamaster import resnet
    path = tmp_path / "resnet56-4bfd9763.th"
    path.write_bytes(akamaster_file(randomized(resnet(56))))
    flags = ["--mean", "0.485", "0.456", "0.406", "--std", "0.229", "0.224", "0.225"]
    assert main(["info", str(path), "--json", *flags, "--trained-on", "cifar10"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["model"]["arch"] == "resnet56a" and info["dataset"] == "cifar10"
    loaded = info["loaded"]
    assert loaded["legacy_batchnorm"].startswith("55 BatchNorm layers") and "legacy" in loaded["file_format"]
    broken = tmp_path / "resnet56-broken.th"
    broken.write_bytes(path.read_bytes()[:5000])
    assert main(["info", str(broken), "--json", *flags]) == 2
    assert "truncated" in json.loads(capsys.readouterr().out)["error"]
