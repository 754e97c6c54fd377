"""The CLI's --json output is a stable contract: schema names, keys and types are checked here."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, env_cache: Path) -> subprocess.CompletedProcess:
    import os
    env = {**os.environ, "NORMSCOPE_CACHE": str(env_cache), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "core", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from core.data import load_dataset
    from core.train import preset, train
    out = tmp_path_factory.mktemp("cli") / "m"
    train(preset("tiny", arch="vgg11", norm="bn", epochs=1, train_subset=1000, probe_per_class=2, probe_steps=1),
          out, dataset=load_dataset("builtin"))
    return out.with_suffix(".safetensors")


def test_info_json(checkpoint, tmp_path):
    r = cli("info", str(checkpoint), "--json", env_cache=tmp_path)
    out = json.loads(r.stdout)
    assert r.returncode == 0 and out["schema"] == "normscope.info/1"
    assert out["model"]["arch"] == "vgg11" and out["dataset"] == "builtin" and len(out["sha256"]) == 64
    assert out["epochs"] == 1 and out["history"][0]["epoch"] == 1 and out["loaded"] == {}  # NormScope's own file


def test_eval_json_with_an_eps_list(checkpoint, tmp_path):
    r = cli("eval", str(checkpoint), "--attack", "pgd_linf", "--eps", "0", "0.01", "--steps", "3", "--per-class", "3",
            "--json", env_cache=tmp_path)
    out = json.loads(r.stdout)
    assert r.returncode == 0 and out["schema"] == "normscope.eval/1" and out["dataset"] == "builtin"
    assert out["attack"]["name"] == "pgd_linf" and out["attack"]["steps"] == 3 and out["data_shift"] is None
    first, second = out["results"]
    assert {"eps", "clean_accuracy", "robust_accuracy", "target_success", "n", "zero_gradient"} <= set(first)
    # a result's fields are its record's (fields may be added within a schema version): each image's outcome too
    assert len(second["robust_correct"]) == second["n"]
    assert sum(second["robust_correct"]) / second["n"] == pytest.approx(second["robust_accuracy"])
    assert first["eps"] == 0 and first["robust_accuracy"] == first["clean_accuracy"] and first["n"] == 30
    assert second["robust_accuracy"] <= first["robust_accuracy"]


def test_ligs_json(checkpoint, tmp_path):
    r = cli("ligs", str(checkpoint), "--kind", "uniform", "--per-class", "3", "--json", env_cache=tmp_path)
    out = json.loads(r.stdout)
    assert r.returncode == 0 and out["schema"] == "normscope.ligs/2" and out["config"]["ligs"]["kind"] == "uniform"
    assert out["config"]["data"] == {"dataset": "builtin", "split": "test", "per_class": 3} and out["kind"] == "uniform"
    assert -1 <= out["ligs"] <= 1 and len(out["per_class"]) == 10 and out["n"] == 30


@pytest.mark.parametrize("args, message", [
    (("info", "missing.safetensors"), "no such file"), (("eval", "README.md"), "not a checkpoint"),
    (("eval", "CKPT", "--eps", "nan"), "eps must be"), (("eval", "CKPT", "--dataset", "imagenet-21k"), "unknown dataset"),
    (("eval", "CKPT", "--per-class", "0"), "images per class must be at least 1"),
    (("eval", "CKPT", "--steps", "-2"), "steps must be 0 or more"),
    (("ligs", "CKPT", "--size", "-1"), "size"),
    (("train", "--preset", "tiny", "--epochs", "0", "--out", "OUT"), "epochs"),
    (("eval", "CKPT", "--attack", "autoattack", "--precision", "bf16"), "runs in fp32"),
    (("corruptions", "CKPT", "--corruptions", "rain"), "unknown corruption 'rain'"),
    (("corruptions", "CKPT", "--corruptions", "frost"), "is not provided"),
    (("corruptions", "CKPT", "--severities", "6"), "severity must be 1-5"),
    (("corruptions", "CKPT", "--source", "cifar10c", "--corruptions", "fog", "--severities", "1"), "CIFAR-10"),
    (("run", "fourier_heatmap", "CKPT", "--set", "eps=0"), "must be positive"),
    (("eval", "CKPT", "--trained-on", "cifar10"), "records training on builtin, not cifar10"),
])
def test_errors_are_one_json_line_and_exit_2(checkpoint, tmp_path, args, message):
    args = [str(checkpoint) if a == "CKPT" else str(tmp_path / "m") if a == "OUT" else a for a in args]
    r = cli(*args, "--json", env_cache=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr + r.stdout
    out = json.loads(r.stdout)
    assert out["schema"] == "normscope.error/1" and message in out["error"]
    assert not (tmp_path / "m.safetensors").exists()


def test_zero_steps_is_the_honest_zero_step_result(checkpoint, tmp_path):
    out = json.loads(cli("eval", str(checkpoint), "--steps", "0", "--per-class", "2", "--json", env_cache=tmp_path).stdout)
    assert out["attack"]["steps"] == 0 and out["results"][0]["robust_accuracy"] == out["results"][0]["clean_accuracy"]


def test_a_device_this_machine_lacks_is_an_error(checkpoint, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    r = cli("eval", str(checkpoint), "--device", "cuda", "--per-class", "1", "--json", env_cache=tmp_path)
    assert r.returncode == 2 and "CUDA" in json.loads(r.stdout)["error"]


def test_training_on_a_device_this_machine_lacks_is_an_error_before_the_job(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    r = cli("train", "--preset", "tiny", "--device", "cuda", "--out", str(tmp_path / "m"), "--json", env_cache=tmp_path)
    assert r.returncode == 2 and "CUDA" in json.loads(r.stdout)["error"] and not (tmp_path / "jobs").exists()


def test_bf16_eval_is_recorded_in_the_attack_and_cached_apart(checkpoint, tmp_path):
    args = ("eval", str(checkpoint), "--steps", "3", "--per-class", "3", "--json")
    fp32 = json.loads(cli(*args, env_cache=tmp_path).stdout)
    bf16 = json.loads(cli(*args, "--precision", "bf16", env_cache=tmp_path).stdout)
    assert fp32["attack"]["precision"] == "fp32" and bf16["attack"]["precision"] == "bf16"
    assert abs(bf16["results"][0]["robust_accuracy"] - fp32["results"][0]["robust_accuracy"]) <= 0.1


def test_text_errors_have_no_traceback(tmp_path):
    r = cli("info", "nope.pt", env_cache=tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("error:") and "Traceback" not in r.stderr


def test_list_registries(tmp_path):
    out = json.loads(cli("list", "attacks", "--json", env_cache=tmp_path).stdout)
    assert out["schema"] == "normscope.list/2"  # /2: an attack's l_p ball is "threat", never "norm"
    attacks = {a["name"]: a for a in out["items"]}
    assert {"fgsm", "pgd_l2", "pgd_linf", "cw_l2", "mifgsm"} <= set(attacks)
    assert attacks["cw_l2"]["threat"] == "l2" and attacks["fgsm"]["paper_steps"] == 1 and "norm" not in attacks["fgsm"]
    experiments = json.loads(cli("list", "experiments", "--json", env_cache=tmp_path).stdout)["items"]
    assert {"robustness", "ligs", "gallery"} <= {e["name"] for e in experiments}
    models = json.loads(cli("list", "models", "--json", env_cache=tmp_path).stdout)["items"]
    assert {"name": "resnet20", "norms": ["none", "bn", "in", "ln", "gn", "fixup"], "family": "cifar"} in models


def test_transfer_json_is_a_sources_by_targets_matrix(checkpoint, tmp_path):
    r = cli("transfer", "--sources", str(checkpoint), "--targets", str(checkpoint), "--per-class", "2",
            "--attack", "difgsm", "--json", env_cache=tmp_path)
    out = json.loads(r.stdout)
    assert r.returncode == 0 and out["schema"] == "normscope.transfer/1" and out["attack"]["name"] == "difgsm"
    (row,) = out["cells"]
    (cell,) = row
    assert cell["white_box"] and cell["n_images"] == 20 and 0 <= cell["n"] <= 20
    assert out["row_average"] == [cell["success_rate"]]
    missing = cli("transfer", "--sources", "no-such-model", "--targets", str(checkpoint), "--json", env_cache=tmp_path)
    assert missing.returncode == 2 and "no checkpoint of that name" in json.loads(missing.stdout)["error"]


def test_landscape_json_is_the_surface_around_one_image(checkpoint, tmp_path):
    r = cli("landscape", str(checkpoint), "--image", "3", "--resolution", "5", "--threat", "linf", "--json",
            env_cache=tmp_path)
    out = json.loads(r.stdout)
    assert r.returncode == 0 and out["schema"] == "normscope.landscape/2" and out["image_index"] == 3
    assert out["config"]["radius"] == pytest.approx(8 / 255) and len(out["loss"]) == 5 and len(out["loss"][0]) == 5
    assert out["loss"][2][2] == pytest.approx(out["centre_loss"], rel=1e-5) and -1 <= out["ligs"] <= 1
    bad = cli("landscape", str(checkpoint), "--resolution", "4", "--json", env_cache=tmp_path)
    assert bad.returncode == 2 and "odd" in json.loads(bad.stdout)["error"]


def test_features_json_extract_list_and_refusal(checkpoint, tmp_path):
    r = cli("features", "extract", str(checkpoint), "--kind", "D_det", "--preset", "tiny", "--json", env_cache=tmp_path)
    out = json.loads(r.stdout)
    assert r.returncode == 0 and out["schema"] == "normscope.features/1"
    item = out["items"][0]
    assert item["kind"] == "D_det" and item["images"] == 200 and 0 <= item["sanity"]["target_rate"] <= 1
    assert item["source"]["arch"] == "vgg11" and item["source"]["name"] == "m"  # the checkpoint summary
    listed = json.loads(cli("features", "list", "--json", env_cache=tmp_path).stdout)["items"]
    assert [d["id"] for d in listed] == [item["id"]] and listed[0]["preset"] == "tiny"
    refused = cli("features", "extract", str(checkpoint), "--kind", "D_R", "--preset", "tiny", "--json",
                  env_cache=tmp_path)
    assert refused.returncode == 2 and "adversarially trained" in json.loads(refused.stdout)["error"]
    assert "Traceback" not in refused.stderr


def test_corruptions_json_is_a_sweep_with_its_mean_error(checkpoint, tmp_path):
    r = cli("corruptions", str(checkpoint), "--corruptions", "gaussian_noise", "contrast", "--severities", "1", "5",
            "--per-class", "2", "--json", env_cache=tmp_path)
    out = json.loads(r.stdout)
    assert r.returncode == 0 and out["schema"] == "normscope.corruptions/1" and out["dataset"] == "builtin"
    assert [(c["corruption"], c["severity"]) for c in out["cells"]] == [
        ("gaussian_noise", 1), ("gaussian_noise", 5), ("contrast", 1), ("contrast", 5)]
    errors = [1 - c["accuracy"] for c in out["cells"]]
    assert out["mean_corruption_error"] == pytest.approx(sum(errors) / 4) and out["n"] == 20
    assert set(out["per_corruption"]) == {"gaussian_noise", "contrast"} and out["source"] == "generated"


def test_every_option_default_is_its_config_dataclass_default():
    """The CLI states no default of its own: each is read from the config it fills, so they cannot drift."""
    from dataclasses import fields

    from core.attacks import AttackSpec
    from core.cli import parser
    from core.corruptions import CorruptionConfig
    from core.experiments import EvalData
    from core.features import FeatureConfig, feature_train_config
    from core.metrics import LIGSSpec
    from core.surface import LossSurfaceConfig

    def defaults(config_type: type, names: list[str]) -> dict:
        return {f.name: f.default for f in fields(config_type) if f.name in names}

    def parsed(*argv: str, names: list[str]) -> dict:
        args = vars(parser().parse_args(list(argv)))
        return {n: args[n] for n in names}

    data = ["dataset", "per_class"]
    assert parsed("eval", "m", names=data) == defaults(EvalData, data)
    attack = ["target", "seed", "precision"]
    assert parsed("eval", "m", names=attack) == defaults(AttackSpec, attack)
    spec = ["kind", "size", "seed", "precision"]
    assert parsed("ligs", "m", names=spec) == defaults(LIGSSpec, spec)
    surface = ["image", "plane", "threat", "resolution", "seed"]
    assert parsed("landscape", "m", names=surface) == defaults(LossSurfaceConfig, surface)
    assert parsed("features", "list", names=["kind"]) == defaults(FeatureConfig, ["kind"])
    corruption = ["seed", "source"]
    assert parsed("corruptions", "m", names=corruption) == defaults(CorruptionConfig, corruption)
    assert parsed("features", "list", names=["norm"])["norm"] == feature_train_config("D_NR").norm


def test_run_computes_any_experiment_by_name_and_equals_its_own_command(checkpoint, tmp_path):
    """``run ligs`` with the eval command's settings gives what ``ligs`` gives: the same experiment, the same key."""
    r = cli("run", "ligs", str(checkpoint), "--set", "data.per_class=3", "ligs.size=0.02", "--json",
            env_cache=tmp_path)
    out = json.loads(r.stdout)
    assert r.returncode == 0 and out["schema"] == "normscope.run/1" and out["experiment"] == "ligs"
    assert out["config"]["ligs"]["size"] == 0.02 and out["config"]["data"]["dataset"] == "builtin"
    direct = json.loads(cli("ligs", str(checkpoint), "--size", "0.02", "--per-class", "3", "--json",
                            env_cache=tmp_path).stdout)
    assert direct["ligs"] == out["result"]["ligs"] and out["result"]["n"] == 30


@pytest.mark.parametrize("experiment, settings, message", [
    ("transfer", ["attack.eps=0.1"], "no default for source"),  # a cell names the source of its examples
    ("robustness", ["attack"], "FIELD=VALUE"), ("robustness", ["colour=red"], "no field 'colour'")])
def test_run_refuses_incomplete_or_unknown_settings_in_one_line(checkpoint, tmp_path, experiment, settings, message):
    r = cli("run", experiment, str(checkpoint), "--set", *settings, "--json", env_cache=tmp_path)
    assert r.returncode == 2 and message in json.loads(r.stdout)["error"] and "Traceback" not in r.stderr


def test_run_naming_only_an_attack_computes_its_paper_settings(checkpoint, tmp_path):
    from core.attacks import paper_spec
    from core.config import config_dict

    r = cli("run", "robustness", str(checkpoint), "--set", "attack.name=fgsm", "data.per_class=1", "--json",
            env_cache=tmp_path)
    out = json.loads(r.stdout)
    assert out["config"]["attack"] == config_dict(paper_spec("fgsm")) and out["result"]["eps"] == 4 / 255


def test_a_bug_keeps_its_traceback_and_debug_shows_a_user_errors(monkeypatch, capsys):
    """User errors (core.errors.NormScopeError) are one line; anything else is a bug and propagates."""
    from dataclasses import replace

    from core import cli
    from core.errors import ParameterError

    def bug(args):
        raise ValueError("an internal invariant broke")
    monkeypatch.setitem(cli.COMMANDS, "info", replace(cli.COMMANDS["info"], run=bug))
    with pytest.raises(ValueError, match="internal invariant"):
        cli.main(["info", "whatever"])

    def user_error(args):
        raise ParameterError("eps must be positive")
    monkeypatch.setitem(cli.COMMANDS, "info", replace(cli.COMMANDS["info"], run=user_error))
    assert cli.main(["info", "whatever"]) == 2 and "error: eps must be positive" in capsys.readouterr().err
    with pytest.raises(ParameterError):
        cli.main(["info", "whatever", "--debug"])


def test_every_user_facing_error_type_is_a_normscope_error():
    from core.cache import CacheWriteError
    from core.checkpoints import CheckpointError, NormalizationUnknown
    from core.cluster import ClusterError
    from core.data import DataError
    from core.errors import NormScopeError
    from core.findings import FindingError
    from core.serving import LimitExceeded, ServingError

    for kind in (CacheWriteError, CheckpointError, NormalizationUnknown, ClusterError, DataError, FindingError,
                 LimitExceeded, ServingError):
        assert issubclass(kind, NormScopeError), kind


def test_an_experiment_that_declares_a_command_has_its_config_fields_as_flags():
    """The generated commands: every settable field a flag, whose defaults build the config's default, and whose
    values land on the field they name (a nested field sharing a name by its path: --ligs-seed)."""
    from core.cli import parser
    from core.cli.options import config_settings
    from core.config import configure
    from core.experiments import registry

    declared = {e.command: e for e in registry().values() if e.command}
    assert {"ligs": "ligs", "landscape": "loss_surface"} == {c: e.name for c, e in declared.items()}
    for command, e in declared.items():
        args = parser().parse_args([command, "m"])
        assert configure(e.config_type, config_settings(args)) == e.config_type()
    args = parser().parse_args(["landscape", "m", "--seed", "2", "--ligs-seed", "3", "--threat", "linf"])
    surface = configure(declared["landscape"].config_type, config_settings(args))
    assert (surface.seed, surface.ligs.seed, surface.radius) == (2, 3, pytest.approx(8 / 255))


@pytest.mark.parametrize("command", [("info",), ("eval", "--steps", "0", "--per-class", "1"),
                                     ("ligs", "--per-class", "1"), ("landscape", "--resolution", "3"),
                                     ("corruptions", "--corruptions", "fog", "--severities", "1", "--per-class", "1"),
                                     ("run", "ligs")])
def test_every_command_takes_a_catalog_name_as_it_takes_a_file(command, tmp_path):
    """One resolver for every command: the shipped zoo's names work wherever a checkpoint file does."""
    from core.catalog import list_checkpoints

    name = next(e.name for e in list_checkpoints() if e.dataset == "builtin")
    argv = [command[0], name, *command[1:]] if command[0] != "run" else ["run", "ligs", name, "--set",
                                                                         "data.per_class=1"]
    out = json.loads(cli(*argv, "--json", env_cache=tmp_path).stdout)
    assert out["schema"].startswith(f"normscope.{command[0]}/") and (out.get("checkpoint") or out)["name"] == name
