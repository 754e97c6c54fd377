"""The command line: ``python -m core {info,run,eval,ligs,transfer,corruptions,landscape,features,train,list,jobs,data}
... [--json]``.

``run`` computes any registered experiment by name from its config dataclass (``--set`` changes fields), so a
new experiment is on the command line as soon as it is declared; the other commands are shaped views of the
paper's experiments.

``--json`` output is a stable contract (schemas ``normscope.<command>/<version>``, see
:data:`SCHEMA_VERSIONS`, documented in the README): tools may script against it. Errors print one line
(``{"error": ...}`` with ``--json``)
and exit with status 2; no traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

import torch

from core._version import CODE_VERSION
from core.attacks import ATTACKS, PRECISIONS, TARGET_MODES, AttackSpec, list_attacks, paper_spec
from core.cache import MISSING, ResultCache
from core.checkpoints import CheckpointError, InputNormalization, load_checkpoint
from core.config import config_dict, configure, field_default
from core.corruptions import CORRUPTIONS, SEVERITIES, CorruptionConfig
from core.corruptions.evaluation import IMAGE_SOURCES
from core.data import DATASETS, available_datasets, data_shift, load_dataset
from core.device import describe_device, resolve_device
from core.errors import NormScopeError, ParameterError
from core.experiments import EvalData, RunContext, get_experiment, registry
from core.features import FEATURE_ARCH, PAPER_NORMS, FeatureConfig, feature_train_config
from core.features import KINDS as FEATURE_KINDS
from core.features import PRESETS as FEATURE_PRESETS
from core.findings import FINDINGS, VERDICT_RULE, effect_text, row_note, scoreboard
from core.metrics import LIGS_KINDS, LIGSSpec
from core.models import list_models, model_entry
from core.progress import ConsoleProgress
from core.records import Record
from core.robustness import AutoAttackConfig
from core.surface import DEFAULT_RADIUS, LossSurfaceConfig

# A schema's version grows when a field is renamed or removed (list/2: attacks' "norm" became "threat").
SCHEMA_VERSIONS = {"info": 1, "run": 1, "eval": 1, "ligs": 1, "transfer": 1, "landscape": 1, "train": 1, "list": 2, "jobs": 1,
                   "error": 1, "data": 1, "features": 1, "corruptions": 1, "findings": 1}


def option(command: argparse.ArgumentParser, flag: str, config_type: type, name: str, help: str, **kw) -> None:
    """``flag`` defaulting to ``config_type``'s field ``name``, its help text stating that default."""
    default = field_default(config_type, name)
    command.add_argument(flag, default=default, help=f"{help} (default {default})" if help else f"default {default}",
                         **kw)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"normscope core {CODE_VERSION}")
    sub = p.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="print a checkpoint's metadata")
    info.add_argument("checkpoint")

    ev = sub.add_parser("eval", help="clean and robust accuracy under an attack")
    ev.add_argument("checkpoint")
    ev.add_argument("--attack", default="pgd_l2", choices=[*list_attacks(), "autoattack"],
                    help="autoattack: worst case per image over APGD-CE and APGD-T (FAB-T, Square not included)")
    ev.add_argument("--threat", default="linf", choices=["linf", "l2"],
                    help="autoattack only; its default eps is AutoAttack's standard (linf 8/255, l2 0.5)")
    ev.add_argument("--eps", type=float, nargs="+", help="one or more budgets (default: the paper's)")
    ev.add_argument("--steps", type=int, help="iterations (default: the paper's; autoattack "
                    f"{field_default(AutoAttackConfig, 'steps')})")
    ev.add_argument("--step-size", type=float, help="default 2.5*eps/steps (PGD, CW), eps/steps (I-FGSM)")
    ev.add_argument("--random-start", action="store_true")
    option(ev, "--target", AttackSpec, "target", "", choices=TARGET_MODES)
    option(ev, "--seed", AttackSpec, "seed", "random start and random targets", type=int)
    option(ev, "--precision", AttackSpec, "precision", "bf16: forward and backward under bf16 autocast, the "
           "perturbation in fp32", choices=PRECISIONS)

    lg = sub.add_parser("ligs", help="LIGS (local input gradient similarity)")
    lg.add_argument("checkpoint")
    option(lg, "--kind", LIGSSpec, "kind", "", choices=LIGS_KINDS)
    option(lg, "--size", LIGSSpec, "size", "std (gaussian) or eps (others)", type=float)
    option(lg, "--seed", LIGSSpec, "seed", "", type=int)
    option(lg, "--precision", LIGSSpec, "precision", "bf16: gradients under bf16 autocast", choices=PRECISIONS)

    tf = sub.add_parser("transfer", help="transfer matrix: examples crafted on each source, success on each target")
    tf.add_argument("--sources", nargs="+", required=True, metavar="CKPT", help="checkpoint files or zoo names")
    tf.add_argument("--targets", nargs="+", required=True, metavar="CKPT", help="checkpoint files or zoo names")
    tf.add_argument("--attack", default="ifgsm", choices=list_attacks(),
                    help="default ifgsm (also mifgsm, difgsm, tifgsm)")
    transfer_default = paper_spec("ifgsm")
    tf.add_argument("--eps", type=float, help=f"linf budget (default: the attack's, ifgsm {transfer_default.eps:.4g})")
    tf.add_argument("--steps", type=int, help=f"iterations (default: the attack's, ifgsm {transfer_default.steps})")
    option(tf, "--seed", AttackSpec, "seed", "seeds DI-FGSM's random resizing", type=int)

    ls_ = sub.add_parser("landscape", help="the loss on a plane of input space around one test image")
    ls_.add_argument("checkpoint")
    option(ls_, "--image", LossSurfaceConfig, "image", "index into the test split", type=int)
    option(ls_, "--plane", LossSurfaceConfig, "plane", "", choices=["gradient-random", "random-random"])
    option(ls_, "--threat", LossSurfaceConfig, "threat", "unit length of the plane's directions",
           choices=list(DEFAULT_RADIUS))
    radii = ", ".join(f"{t} {r:.4g}" for t, r in DEFAULT_RADIUS.items())
    ls_.add_argument("--radius", type=float, help=f"half-width of the grid (default by threat: {radii})")
    option(ls_, "--resolution", LossSurfaceConfig, "resolution", "points per axis, odd", type=int)
    option(ls_, "--seed", LossSurfaceConfig, "seed", "seeds the random direction", type=int)

    cr = sub.add_parser("corruptions", help="accuracy under the CIFAR-10-C corruptions, and the mean corruption "
                        "error (Sec. 3.2)")
    cr.add_argument("checkpoint")
    cr.add_argument("--corruptions", nargs="+", default=list(CORRUPTIONS), metavar="NAME",
                    help=f"default all provided: {', '.join(CORRUPTIONS)}")
    cr.add_argument("--severities", nargs="+", type=int, default=list(SEVERITIES), metavar="S", help="1-5 (default all)")
    option(cr, "--seed", CorruptionConfig, "seed", "seeds the corruptions' random draws", type=int)
    option(cr, "--source", CorruptionConfig, "source", "cifar10c: the published CIFAR-10-C arrays (NORMSCOPE_CIFAR10C)",
           choices=IMAGE_SOURCES)

    rn = sub.add_parser("run", help="any registered experiment on a checkpoint: its config's defaults, --set to "
                        "change fields (what every page computes, by name)")
    rn.add_argument("experiment", choices=sorted(registry()))
    rn.add_argument("checkpoint", help="a checkpoint file or a catalog name")
    rn.add_argument("--set", nargs="+", default=[], metavar="FIELD=VALUE",
                    help="config fields, dotted for nested ones (attack.name=pgd_l2 attack.eps=0.5 data.per_class=20);"
                    " values are JSON, else text")
    rn.add_argument("--no-cache", action="store_true", help="recompute instead of reading the cache")

    for command in (ev, lg, tf, ls_, cr):
        option(command, "--dataset", EvalData, "dataset", "auto: the checkpoint's own dataset")
        option(command, "--per-class", EvalData, "per_class", "balanced test subset size per class", type=int)
        command.add_argument("--no-cache", action="store_true", help="recompute instead of reading the cache")

    for command in (info, ev, lg, tf, ls_, cr, rn):  # every command that loads checkpoints
        checkpoint_flags(command)

    tr = sub.add_parser("train", help="train a model in the foreground (same runner as background jobs)")
    tr.add_argument("--preset", default="cpu")
    tr.add_argument("--arch")
    tr.add_argument("--norm")
    tr.add_argument("--width", type=float)
    tr.add_argument("--epochs", type=int)
    tr.add_argument("--dataset")
    tr.add_argument("--seed", type=int)
    tr.add_argument("--landscape-every", type=int, help="record the optimization landscape every k steps (App. I)")
    tr.add_argument("--precision", choices=PRECISIONS, help="bf16: train under bf16 autocast (default: the preset's); "
                    "faster only where the hardware has native bf16: python -m core list precisions measures this "
                    "machine")
    tr.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                    help="torch.compile the model (CUDA graphs on a GPU; default: the preset's)")
    tr.add_argument("--deterministic", action="store_true", default=None,
                    help="deterministic kernels on a GPU too (slower; the CPU's are already)")
    tr.add_argument("--batch-size", type=int)
    tr.add_argument("--lr", type=float)
    tr.add_argument("--out", required=True, help="checkpoint path without suffix")

    fe = sub.add_parser("features", help="feature datasets (App. C, F): extract, train on one, cross-evaluate, list")
    fe.add_argument("action", choices=["extract", "train", "cross-eval", "list"])
    checkpoint_flags(fe)
    fe.add_argument("checkpoints", nargs="*", metavar="CKPT", help="source checkpoint files or catalog names")
    option(fe, "--kind", FeatureConfig, "kind", "D_R needs an adversarially trained source", choices=FEATURE_KINDS)
    fe.add_argument("--preset", default="cpu", choices=list(FEATURE_PRESETS),
                    help="paper: 50k images, Eq. A2 with 1000 steps, Table A5 training; cpu: 2000 images, 100 steps")
    fe.add_argument("--start", default="", help="D_conflict: the id of the D_R dataset its attack starts from")
    trained = feature_train_config(field_default(FeatureConfig, "kind"))
    fe.add_argument("--arch", help=f"the trained model's architecture (default: {trained.arch}; cross-eval: "
                    f"{FEATURE_ARCH})")
    fe.add_argument("--norm", default=trained.norm, help=f"train: the trained model's normalization (default "
                    f"{trained.norm})")
    fe.add_argument("--norms", nargs="+", default=list(PAPER_NORMS), help="cross-eval: the target normalizations")
    fe.add_argument("--epochs", type=int, help="override the preset's training epochs")
    fe.add_argument("--no-cache", action="store_true", help="recompute instead of reading the cache")

    fi = sub.add_parser("findings", help="the paper's findings scored on the zoo's comparable pairs, each with its "
                                         "effect, 95 %% interval and verdict (cached results only)")
    fi.add_argument("--finding", nargs="+", default=[], choices=[f.key for f in FINDINGS], help="only these")
    fi.add_argument("--pair", nargs=2, metavar=("TREATED", "CONTROL"),
                    help="score one pair of catalog names (the normalized model first) instead of the zoo's pairs")

    ls = sub.add_parser("list", help="list registries: models, attacks, experiments, datasets, presets; precisions "
                                     "(each one's training speed here, probed once per machine)")
    ls.add_argument("what", choices=["models", "attacks", "experiments", "datasets", "presets", "precisions"])

    dt = sub.add_parser("data", help="get a dataset: `data get cifar10` downloads torchvision's CIFAR-10 (md5-checked)")
    dt.add_argument("action", choices=["get"])
    dt.add_argument("name", choices=["cifar10"])

    jb = sub.add_parser("jobs", help="background jobs")
    jb.add_argument("action", choices=["list", "show", "cancel", "resume", "run"])
    jb.add_argument("job_id", nargs="?")
    jb.add_argument("--root", help="cache root holding jobs/ (default: NORMSCOPE_CACHE)")

    for command in sub.choices.values():
        command.add_argument("--json", action="store_true", help="machine-readable output")
        command.add_argument("--device", help="cuda or cpu (default: cuda if available)")
        command.add_argument("--threads", type=int, help="CPU threads for torch")
        command.add_argument("--data-root", help="folder of torchvision datasets (sets NORMSCOPE_DATA)")
        command.add_argument("--download", action="store_true",
                             help="download the named torchvision dataset into --data-root if missing")
        command.add_argument("--debug", action="store_true", help="a user error's traceback too (bugs always show one)")
    return p


def attack_specs(args) -> list[AttackSpec]:
    base = paper_spec(args.attack, random_start=args.random_start, target=args.target, seed=args.seed,
                      precision=args.precision)
    base = replace(base, steps=base.steps if args.steps is None else args.steps, step_size=args.step_size)
    return [base.with_eps(e) for e in (args.eps or [base.eps])]


def checkpoint_flags(command: argparse.ArgumentParser) -> None:
    """The flags of every command that loads checkpoints (read by :func:`checkpoint_arg`)."""
    command.add_argument("--trained-on", metavar="DATASET", choices=DATASETS,
                         help="what the model was trained on, for checkpoints that do not record it (e.g. cifar10 "
                              "for published weights); numbers read on other images than those are marked")
    command.add_argument("--mean", type=float, nargs=3, metavar=("R", "G", "B"),
                         help="input normalization mean, for checkpoints that do not record theirs (with --std)")
    command.add_argument("--std", type=float, nargs=3, metavar=("R", "G", "B"),
                         help="input normalization std, for checkpoints that do not record theirs (with --mean)")


def input_normalization(args) -> InputNormalization | None:
    """``--mean``/``--std``: used where a checkpoint records no normalization, checked where it does."""
    if (args.mean is None) != (args.std is None):
        raise ParameterError("give --mean and --std together (3 values each), or neither")
    return None if args.mean is None else InputNormalization(tuple(args.mean), tuple(args.std))


def cmd_info(args) -> dict:
    ckpt = checkpoint_arg(args)
    entry = model_entry(ckpt.spec.arch)
    return {"name": ckpt.name, "sha256": ckpt.sha256, "model": ckpt.spec.to_dict(), "family": entry.family,
            "parameters": sum(p.numel() for p in ckpt.model.parameters()), "dataset": ckpt.dataset,
            "train_config": ckpt.meta.get("train_config"), "final_metrics": ckpt.meta.get("final_metrics"),
            "epochs": len(ckpt.history), "history": ckpt.history,
            "metadata_code_version": ckpt.meta.get("code_version"),
            "loaded": {k: ckpt.meta[k] for k in LOADED if k in ckpt.meta}}


LOADED = ("file_format", "layout", "input_normalization", "legacy_batchnorm")  # how a file without metadata was read


def run_context(args) -> RunContext:
    return RunContext(_NoCache() if args.no_cache else ResultCache(), args.device,
                      None if args.json else ConsoleProgress())


def cmd_eval(args) -> dict:
    from core.robustness import RobustnessConfig, robustness

    if args.attack == "autoattack":
        return cmd_autoattack(args)
    specs, data = attack_specs(args), EvalData(args.dataset, "test", args.per_class)
    ckpt, run = checkpoint_arg(args), run_context(args)
    runs = [robustness(ckpt, RobustnessConfig(spec, data), run) for spec in specs]
    results = [picked(r, "eps", "clean_accuracy", "robust_accuracy", "target_success", "n", "zero_gradient")
               for r in runs]  # zero_gradient None: cached before it was measured
    return {"checkpoint": _ckpt_summary(ckpt), "dataset": runs[0].dataset,
            "attack": {**config_dict(specs[0]), "threat": specs[0].entry.threat, "precision": specs[0].precision},
            "results": results}


def cmd_autoattack(args) -> dict:
    """``eval --attack autoattack``: the AutoAttack-style evaluation at each ``--eps`` (default AutoAttack's)."""
    from core.robustness import AUTOATTACK_ATTACKS, AutoAttackConfig, autoattack

    if args.step_size is not None or args.random_start or args.target != "untargeted" or args.precision != "fp32":
        raise ParameterError("autoattack sets its own step size, random start and targets and runs in fp32: "
                             "leave out --step-size, --random-start, --target and --precision")
    steps = field_default(AutoAttackConfig, "steps") if args.steps is None else args.steps
    configs = [AutoAttackConfig(args.threat, eps, steps, args.seed, EvalData(args.dataset, "test", args.per_class))
               for eps in (args.eps or [None])]
    ckpt, run = checkpoint_arg(args), run_context(args)
    runs = [autoattack(ckpt, config, run) for config in configs]
    results = [{**picked(r, "eps", "clean_accuracy", "robust_accuracy", "n", "per_attack", "zero_gradient"),
                "target_success": None} for r in runs]
    return {"checkpoint": _ckpt_summary(ckpt), "dataset": runs[0].dataset,
            "attack": {"name": "autoattack", "threat": args.threat, "steps": steps, "seed": args.seed,
                       "attacks": [f"{a}_{args.threat}" for a in AUTOATTACK_ATTACKS],
                       "not_included": ["fab-t", "square"]},
            "results": results}


def cmd_ligs(args) -> dict:
    from core.robustness import LIGSConfig, ligs_report

    spec = LIGSSpec(args.kind, args.size, seed=args.seed, precision=args.precision)
    data = EvalData(args.dataset, "test", args.per_class)
    ckpt = checkpoint_arg(args)
    r = ligs_report(ckpt, LIGSConfig(spec, data), run_context(args))
    return {"checkpoint": _ckpt_summary(ckpt), "dataset": r.dataset,
            "perturbation": {**config_dict(spec), "precision": spec.precision},
            **picked(r, "n", "ligs", "logit_similarity", "per_class")}


def cmd_transfer(args) -> dict:
    from core.transfer import transfer_matrix

    spec = paper_spec(args.attack, seed=args.seed)
    spec = replace(spec, eps=spec.eps if args.eps is None else args.eps,
                   steps=spec.steps if args.steps is None else args.steps)
    sources, targets = ([checkpoint_arg(args, a) for a in names] for names in (args.sources, args.targets))
    m = transfer_matrix(sources, targets, spec, EvalData(args.dataset, "test", args.per_class), run_context(args))
    cells = [[picked(m.cells[i, j], "success_rate", "error_rate", "n", "n_images") | {
        "white_box": (i, j) in m.white_box} for j in range(len(targets))] for i in range(len(sources))]
    return {"sources": [_ckpt_summary(c) for c in sources], "targets": [_ckpt_summary(c) for c in targets],
            "dataset": m.data.dataset, "attack": {**config_dict(spec), "threat": spec.entry.threat}, "cells": cells,
            "row_average": [m.row_average(i) for i in range(len(sources))]}


def cmd_landscape(args) -> dict:
    from core.surface import LossSurfaceConfig, loss_surface

    config = LossSurfaceConfig(args.image, args.plane, args.threat, args.radius, args.resolution, args.seed,
                               data=EvalData(args.dataset, "test", 1))
    ckpt = checkpoint_arg(args)
    r = loss_surface(ckpt, config, run_context(args))
    return {"checkpoint": _ckpt_summary(ckpt), "dataset": r.dataset, "surface": config_dict(config),
            **picked(r, "image_index", "label", "axes", "coords", "loss", "pred", "centre_loss", "centre_pred",
                     "gradient_norm", "ligs")}


def cmd_corruptions(args) -> dict:
    from core.corruptions import corruption_sweep

    ckpt = checkpoint_arg(args)
    r = corruption_sweep(ckpt, tuple(args.corruptions), tuple(args.severities), EvalData(args.dataset, "test",
                         args.per_class), args.seed, args.source, run_context(args))
    return {"checkpoint": _ckpt_summary(ckpt), **{k: v for k, v in r.items() if k != "checkpoint"}}


def picked(record: Record, *names: str) -> dict:
    """Some of a record's fields, JSON-ready."""
    return {name: config_dict(getattr(record, name), typed=False) for name in names}


def settings(pairs: list[str]) -> dict:
    """``FIELD=VALUE`` pairs: each value read as JSON (numbers, true, null, lists), else as text."""
    out = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise ParameterError(f"--set takes FIELD=VALUE, got {pair!r}")
        try:
            out[name] = json.loads(text)
        except ValueError:
            out[name] = text
    return out


def cmd_run(args) -> dict:
    """``run EXPERIMENT CKPT [--set ...]``: the experiment's cached result, computed on a miss."""
    experiment = get_experiment(args.experiment)
    config = configure(experiment.config_type, settings(args.set))
    ckpt = checkpoint_arg(args)
    result = experiment(ckpt, config, run_context(args))
    return {"checkpoint": _ckpt_summary(ckpt), "experiment": experiment.name,
            "config": config_dict(experiment.resolved(ckpt, config)), "result": result.to_dict()}


def checkpoint_arg(args, name: str | None = None):
    """The command's checkpoint (``name``, else its ``checkpoint`` argument): a file or a catalog name, with the
    shared flags applied (``--mean``/``--std``, ``--trained-on``)."""
    ckpt = find_checkpoint(name or args.checkpoint, input_normalization(args))
    if args.trained_on and ckpt.dataset not in ("unknown", args.trained_on):
        raise ParameterError(f"{ckpt.name}: its metadata records training on {ckpt.dataset}, not {args.trained_on}; "
                             "leave out --trained-on")
    if args.trained_on:
        ckpt.meta["dataset"] = args.trained_on
    return ckpt


def find_checkpoint(name: str, normalization: InputNormalization | None = None):
    """A checkpoint file, else the catalog's checkpoint of that name (the zoo's ``cifar10jpeg-vgg11-bn``)."""
    from core.catalog import list_checkpoints

    if Path(name).is_file():
        return load_checkpoint(name, normalization=normalization)
    found = [e for e in list_checkpoints() if name in (e.name, e.label)]
    if not found:
        raise CheckpointError(f"{name}: no such file, and no checkpoint of that name in the catalog")
    return load_checkpoint(found[0].path, normalization=normalization)


def cmd_train(args) -> dict:
    from core import jobs
    from core.train import preset

    options = ("arch", "norm", "width", "epochs", "dataset", "seed", "landscape_every", "precision", "compile",
               "deterministic", "batch_size", "lr")
    config = preset(args.preset, **{k: getattr(args, k) for k in options if getattr(args, k) is not None})
    resolve_device(args.device)  # a device this machine lacks fails here, not inside the job
    job = jobs.create("train", {"config": config.to_dict(), "out": args.out, "device": args.device}, title=args.out)
    status = jobs.run(job, None if args.json else ConsoleProgress())
    return {"job": job.id, "state": status["state"], **(status.get("result") or {})}


def cmd_features(args) -> dict | list:
    """``features extract|train|cross-eval|list``: the feature-dataset experiments of :mod:`core.features`."""
    from core import features

    if args.action == "list":
        return features.list_feature_datasets()
    if not args.checkpoints:
        raise ParameterError(f"features {args.action} needs at least one source checkpoint")
    sources, run = [checkpoint_arg(args, c) for c in args.checkpoints], run_context(args)
    config = features.feature_config(args.kind, args.preset, start=args.start)
    if args.action == "extract":
        results = [features.feature_dataset(s, config, run) for s in sources]
        return [{"source": _ckpt_summary(s), **picked(r, "id", "kind", "images", "source_dataset", "sanity"),
                 "config": config_dict(r.config)} for s, r in zip(sources, results)]
    epochs = {} if args.epochs is None else {"epochs": args.epochs}
    if args.action == "train":
        arch = {"arch": args.arch} if args.arch else {}
        train_config = features.feature_train_config(args.kind, norm=args.norm, preset=args.preset, **arch, **epochs)
        r = features.feature_training(sources[0], features.FeatureTrainingConfig(config, train_config), run)
        return {"source": _ckpt_summary(sources[0]), "target": {"arch": train_config.arch, "norm": train_config.norm},
                **picked(r, "dataset_id", "kind", "test_accuracy", "test_images", "final_metrics", "history", "model")}
    arch = args.arch or features.FEATURE_ARCH
    matrix = features.cross_evaluation(sources, [s.spec.norm for s in sources], args.kind, arch,
                                       tuple(args.norms), args.preset, run)
    return {"kind": args.kind, "preset": args.preset, "arch": arch,
            "sources": [_ckpt_summary(s) for s in sources], **matrix.to_dict()}


def cmd_findings(args) -> dict:
    """The scoreboard from the cache (the zoo's shipped results seeded first, as the dashboard does)."""
    from core.catalog import shipped_seeds

    cache = ResultCache()
    for shipped in shipped_seeds():
        cache.seed(shipped)
    return {"rule": VERDICT_RULE, "findings": scoreboard(cache, tuple(args.finding), args.pair)}


def cmd_list(args) -> dict | list:
    from core.train import PRESETS

    if args.what == "models":
        return [{"name": n, "norms": list(model_entry(n).norms), "family": model_entry(n).family} for n in list_models()]
    if args.what == "attacks":
        return [{"name": n, "title": a.title, "threat": a.threat, "paper_eps": a.default("eps"),
                 "paper_steps": a.default("steps", 1), "description": a.description} for n, a in ATTACKS.items()]
    if args.what == "experiments":
        return [{"name": n, "config": e.config_type.__name__, "description": e.description}
                for n, e in registry().items()]
    if args.what == "datasets":
        present = available_datasets()
        return [{"name": n, "available": n in present} for n in DATASETS]
    if args.what == "precisions":
        from core.speed import precision_speed, speed_note
        return [{"name": p, "speed_vs_fp32": v, "note": speed_note(p, args.device)}
                for p, v in precision_speed(args.device).items()]
    return [{"name": n, **{k: config_dict(v) for k, v in p.items()}} for n, p in PRESETS.items()]


def cmd_data(args) -> dict:
    """``data get cifar10``: torchvision's CIFAR-10 into --data-root / NORMSCOPE_DATA (nothing if already there)."""
    from core.data import download_cifar10

    folder = download_cifar10(progress=None if args.json else ConsoleProgress())
    return {"dataset": args.name, "path": str(folder), "available": available_datasets()}


def cmd_jobs(args) -> dict | list:
    from core import jobs

    root = args.root
    if args.action == "list":
        return [{"id": j.id, **j.spec, **j.status} for j in jobs.list_jobs(root)]
    if not args.job_id:
        raise ParameterError(f"jobs {args.action} needs a job id")
    job = jobs.get(args.job_id, root)
    if args.action == "cancel":
        job.cancel()
    elif args.action == "resume":
        jobs.resume(job)
    elif args.action == "run":
        jobs.run(job)
    return {"id": job.id, **job.status, "log": job.log(20)}


class _NoCache(ResultCache):
    """A cache that never hits, for ``--no-cache``; results still are stored for later runs."""

    def get(self, key):  # noqa: D401
        return MISSING


def with_data_shift(payload):
    """A single checkpoint's result with ``data_shift``: what differs between its training data and the data its
    numbers were read on (null where nothing does, :func:`core.data.data_shift`)."""
    if isinstance(payload, dict) and "checkpoint" in payload and "dataset" in payload:
        payload = {**payload, "data_shift": data_shift(payload["checkpoint"]["dataset"], payload["dataset"])}
    return payload


def _ckpt_summary(ckpt) -> dict:
    return {"name": ckpt.name, "sha256": ckpt.sha256, "arch": ckpt.spec.arch, "norm": ckpt.spec.norm,
            "dataset": ckpt.dataset}


COMMANDS = {"info": cmd_info, "run": cmd_run, "eval": cmd_eval, "ligs": cmd_ligs, "transfer": cmd_transfer,
            "corruptions": cmd_corruptions,
            "landscape": cmd_landscape, "train": cmd_train, "list": cmd_list, "features": cmd_features,
            "jobs": cmd_jobs, "data": cmd_data, "findings": cmd_findings}


def schema(command: str) -> str:
    return f"normscope.{command}/{SCHEMA_VERSIONS[command]}"


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.data_root:
        os.environ["NORMSCOPE_DATA"] = args.data_root
    try:
        resolve_device(args.device)  # asking for a device this machine lacks is an error, cached result or not
        if args.download:
            name = getattr(args, "dataset", None)
            load_dataset(name if name not in (None, "auto") else "cifar10", download=True)
        payload = with_data_shift(COMMANDS[args.command](args))
    except NormScopeError as e:  # anything else is a bug: its traceback shows
        if args.debug:
            raise
        message = str(e)
        print(json.dumps({"schema": schema("error"), "error": message}) if args.json else f"error: {message}",
              file=sys.stdout if args.json else sys.stderr)
        return 2
    if args.json:
        body = {"items": payload} if isinstance(payload, list) else payload
        print(json.dumps({"schema": schema(args.command), "code_version": CODE_VERSION,
                          "device": describe_device(resolve_device(args.device)), **body}))
    else:
        print(render_text(args.command, payload))
        if isinstance(payload, dict) and payload.get("data_shift"):
            print(f"note: {payload['data_shift']}")
    return 0


def render_text(command: str, payload) -> str:
    if command == "eval":
        head = f"{payload['checkpoint']['name']} on {payload['dataset']} - {payload['attack']['name']}"
        rows = [f"  eps={r['eps']:.4g}  clean={100 * r['clean_accuracy']:.1f}%  robust={100 * r['robust_accuracy']:.1f}%"
                + (f"  target hit={100 * r['target_success']:.1f}%" if r["target_success"] is not None else "")
                + "".join(f"  {name}={100 * acc:.1f}%" for name, acc in r.get("per_attack", {}).items())
                + f"  zero gradient: {_zero_gradient(r['zero_gradient'])}" for r in payload["results"]]
        return "\n".join([head, *rows])
    if command == "transfer":
        return render_transfer(payload)
    if command == "findings":
        return render_findings(payload)
    if command == "corruptions":
        return render_corruptions(payload)
    if command == "landscape":
        loss = payload["loss"]
        return (f"{payload['checkpoint']['name']} on {payload['dataset']}, image {payload['image_index']} "
                f"(label {payload['label']}): loss {payload['centre_loss']:.4f} at the image, "
                f"{min(map(min, loss)):.4f}..{max(map(max, loss)):.4f} on the {payload['surface']['plane']} plane "
                f"(radius {payload['surface']['radius']:.4g}, {payload['surface']['threat']}); "
                f"LIGS {payload['ligs']:.4f}")
    if command == "ligs":
        return (f"{payload['checkpoint']['name']} on {payload['dataset']}: LIGS={payload['ligs']:.4f} "
                f"({payload['perturbation']['kind']}, size {payload['perturbation']['size']}, n={payload['n']})")
    if isinstance(payload, list):
        return "\n".join(json.dumps(item) for item in payload)
    return json.dumps(payload, indent=1, default=str)


def render_transfer(payload: dict) -> str:
    """The matrix as text: success rate in %, white-box cells marked *, the row average last (as Table A8)."""
    names = [t["name"] for t in payload["targets"]]
    width = max(12, *(len(n) for n in names))
    head = f"{payload['attack']['name']} on {payload['dataset']}: attack success rate (%)"
    lines = [head, " " * 28 + "".join(f"{n[:width]:>{width + 2}}" for n in names) + "     avg"]
    for source, row, avg in zip(payload["sources"], payload["cells"], payload["row_average"]):
        cells = "".join(f"{_pct(c['success_rate']) + ('*' if c['white_box'] else ' '):>{width + 2}}" for c in row)
        lines.append(f"{source['name'][:28]:<28}{cells}{_pct(avg):>8}")
    return "\n".join(lines)


def render_findings(payload: dict) -> str:
    """Each finding's verdict, then its rows: effect in points (the paper's direction positive) and interval."""
    lines = []
    for f in payload["findings"]:
        lines.append(f"[{f['verdict']}] {f['number']}. {f['claim']} ({f['source']})")
        for r in f["rows"]:
            extra = row_note(r)
            lines.append(f"    {r['verdict']:<13} {effect_text(r):<22} {r['measure']}: {r['pair']}" +
                         (f" ({extra})" if extra else ""))
    return "\n".join(lines + ["", payload["rule"]])


def render_corruptions(payload: dict) -> str:
    """Accuracy (%) per corruption and severity, then the mean corruption error."""
    by = {(c["corruption"], c["severity"]): c["accuracy"] for c in payload["cells"]}
    severities = sorted({s for _, s in by})
    lines = [f"{payload['checkpoint']['name']} on {payload['dataset']} ({payload['source']}, n={payload['n']}): "
             f"accuracy (%), clean {_pct(payload['clean_accuracy'])}",
             f"{'':18}" + "".join(f"{'s' + str(s):>7}" for s in severities)]
    for name in dict.fromkeys(c for c, _ in by):
        lines.append(f"{name:18}" + "".join(f"{_pct(by[name, s]):>7}" for s in severities))
    lines.append(f"mean corruption error {_pct(payload['mean_corruption_error'])}% "
                 f"(relative to clean {_pct(payload['relative_mean_corruption_error'])}%)")
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _zero_gradient(value: float | None | dict) -> str:
    """The fraction of images with an exactly zero input gradient, per attack for autoattack."""
    if isinstance(value, dict):
        return ", ".join(f"{name} {_zero_gradient(v)}" for name, v in value.items())
    return "not measured" if value is None else f"{100 * value:.1f}%"
