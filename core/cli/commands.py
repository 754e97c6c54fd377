"""The command table: each command is its arguments, what it runs, its JSON and its text output.

The experiments that declare a command (``@experiment(..., command=, summary=)``) are generated from the
registry: their config's fields are their flags, their record their JSON, their summary their text.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass, replace
from typing import Any, Callable

from core.attacks import ATTACKS, PRECISIONS, TARGET_MODES, AttackSpec, list_attacks, paper_spec
from core.cli.options import (checkpoint_arg, computes, config_options, config_settings, loads_checkpoints, option,
                              run_context, settings)
from core.checkpoints import Checkpoint
from core.config import config_dict, configure, field_default
from core.corruptions import CORRUPTIONS, SEVERITIES, CorruptionConfig
from core.corruptions.evaluation import IMAGE_SOURCES
from core.data import DATASETS, available_datasets
from core.errors import ParameterError
from core.experiments import EvalData, Experiment, get_experiment, registry
from core.features import FEATURE_ARCH, PAPER_NORMS, FeatureConfig, feature_train_config
from core.features import KINDS as FEATURE_KINDS
from core.features import PRESETS as FEATURE_PRESETS
from core.findings import FINDINGS, VERDICT_RULE, effect_text, row_note
from core.models import list_models, model_entry
from core.progress import ConsoleProgress
from core.records import Record, Source
from core.robustness import AutoAttackConfig
from core.train import PRESETS, TrainConfig

# The JSON layout of every experiment command: 2 since it is the record's (ligs' "perturbation" and landscape's
# "surface" became "config"). It grows when a record's field is renamed or removed.
EXPERIMENT_SCHEMA = 2


def as_text(payload: Any) -> str:
    """A command's text where it has none of its own: its JSON, an item a line."""
    if isinstance(payload, list):
        return "\n".join(map(json.dumps, payload))
    return json.dumps(payload, indent=1, default=str)


@dataclass(frozen=True)
class Command:
    """One command: ``arguments`` adds its own to its parser, ``run(args)`` computes its result, ``json`` makes that
    JSON-ready and ``text`` readable. ``flags``: the shared flag groups it takes besides every command's."""

    name: str
    help: str
    run: Callable[[argparse.Namespace], Any]
    arguments: Callable[[argparse.ArgumentParser], None] = lambda command: None
    text: Callable[[Any], str] = as_text
    json: Callable[[Any], Any] = lambda result: result
    version: int = 1  # its JSON schema's: grows when a field is renamed or removed
    flags: tuple[Callable[[argparse.ArgumentParser], None], ...] = ()

    @property
    def schema(self) -> str:
        return f"normscope.{self.name}/{self.version}"


def source(checkpoint: Checkpoint) -> dict:
    """A checkpoint as results name it (:class:`core.records.Source`): name, sha256, architecture, norm, dataset."""
    return dataclasses.asdict(Source.of(checkpoint))


def checkpoint_positional(command: argparse.ArgumentParser) -> None:
    command.add_argument("checkpoint", help="a checkpoint file or a catalog name")


def data_options(command: argparse.ArgumentParser) -> None:
    config_options(command, EvalData, skip=("split",))


def eval_data(args: argparse.Namespace) -> EvalData:
    """The test images that :func:`data_options`' flags name."""
    return configure(EvalData, config_settings(args))


def experiment_command(experiment: Experiment) -> Command:
    """``python -m core COMMAND CKPT [--FIELD VALUE ...]``: one experiment, its config's fields as flags."""
    def run(args: argparse.Namespace) -> Record:
        ckpt = checkpoint_arg(args)
        config = configure(experiment.config_type, config_settings(args))
        return replace(experiment(ckpt, config, run_context(args)), checkpoint=Source.of(ckpt))

    def arguments(command: argparse.ArgumentParser) -> None:
        checkpoint_positional(command)
        config_options(command, experiment.config_type)
    return Command(experiment.command, experiment.description, run, arguments, experiment.summary, record_json,
                   EXPERIMENT_SCHEMA, (loads_checkpoints, computes))


def record_json(record: Record) -> dict:
    """An experiment command's JSON: the checkpoint, the images' dataset, the config and what was measured."""
    return {"checkpoint": dataclasses.asdict(record.checkpoint), "dataset": record.dataset,
            "config": config_dict(record.config, typed=False), **record.measured()}


def run_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("experiment", choices=sorted(registry()))
    checkpoint_positional(command)
    command.add_argument("--set", nargs="+", default=[], metavar="FIELD=VALUE",
                         help="config fields, dotted for nested ones (attack.name=pgd_l2 attack.eps=0.5 "
                              "data.per_class=20); values are JSON, else text")


def run_experiment(args: argparse.Namespace) -> dict:
    """``run EXPERIMENT CKPT [--set ...]``: the experiment's cached result, computed on a miss."""
    experiment, ckpt = get_experiment(args.experiment), checkpoint_arg(args)
    config = configure(experiment.config_type, settings(args.set))
    result = experiment(ckpt, config, run_context(args))
    return {"checkpoint": source(ckpt), "experiment": experiment.name,
            "config": config_dict(experiment.resolved(ckpt, config)), "result": result.to_dict()}


def eval_arguments(command: argparse.ArgumentParser) -> None:
    checkpoint_positional(command)
    command.add_argument("--attack", default="pgd_l2", choices=[*list_attacks(), "autoattack"],
                         help="autoattack: worst case per image over APGD-CE and APGD-T (FAB-T, Square not included)")
    command.add_argument("--threat", default="linf", choices=["linf", "l2"],
                         help="autoattack only; its default eps is AutoAttack's standard (linf 8/255, l2 0.5)")
    command.add_argument("--eps", type=float, nargs="+", help="one or more budgets (default: the paper's)")
    command.add_argument("--steps", type=int, help="iterations (default: the paper's; autoattack "
                         f"{field_default(AutoAttackConfig, 'steps')})")
    command.add_argument("--step-size", type=float, help="default 2.5*eps/steps (PGD, CW), eps/steps (I-FGSM)")
    command.add_argument("--random-start", action="store_true")
    option(command, "--target", AttackSpec, "target", "", choices=TARGET_MODES)
    option(command, "--seed", AttackSpec, "seed", "random start and random targets", type=int)
    option(command, "--precision", AttackSpec, "precision", "bf16: forward and backward under bf16 autocast, the "
           "perturbation in fp32", choices=PRECISIONS)
    data_options(command)


def evaluate(args: argparse.Namespace) -> dict:
    """``eval``: a robustness result per ``--eps`` (AutoAttack's evaluation for ``--attack autoattack``)."""
    if args.attack == "autoattack":
        return evaluate_autoattack(args)
    from core.robustness import robustness_sweep

    base = paper_spec(args.attack, random_start=args.random_start, target=args.target, seed=args.seed,
                      precision=args.precision)
    base = replace(base, steps=base.steps if args.steps is None else args.steps, step_size=args.step_size)
    ckpt = checkpoint_arg(args)
    runs = robustness_sweep(ckpt, base, args.eps or [base.eps], eval_data(args), run_context(args))
    return {"checkpoint": source(ckpt), "dataset": runs[0].dataset,
            "attack": {**config_dict(base, typed=False), "threat": base.entry.threat, "precision": base.precision},
            "results": [r.measured() for r in runs]}


def evaluate_autoattack(args: argparse.Namespace) -> dict:
    from core.robustness import AUTOATTACK_ATTACKS, autoattack

    if args.step_size is not None or args.random_start or args.target != "untargeted" or args.precision != "fp32":
        raise ParameterError("autoattack sets its own step size, random start and targets and runs in fp32: "
                             "leave out --step-size, --random-start, --target and --precision")
    steps = field_default(AutoAttackConfig, "steps") if args.steps is None else args.steps
    ckpt, run, data = checkpoint_arg(args), run_context(args), eval_data(args)
    runs = [autoattack(ckpt, AutoAttackConfig(args.threat, eps, steps, args.seed, data), run)
            for eps in (args.eps or [None])]
    return {"checkpoint": source(ckpt), "dataset": runs[0].dataset,
            "attack": {"name": "autoattack", "threat": args.threat, "steps": steps, "seed": args.seed,
                       "attacks": [f"{a}_{args.threat}" for a in AUTOATTACK_ATTACKS],
                       "not_included": ["fab-t", "square"]},
            "results": [{"target_success": None, **r.measured()} for r in runs]}


def eval_text(payload: dict) -> str:
    lines = [f"{payload['checkpoint']['name']} on {payload['dataset']} - {payload['attack']['name']}"]
    for r in payload["results"]:
        target = r["target_success"]
        lines.append(f"  eps={r['eps']:.4g}  clean={pct(r['clean_accuracy'])}%  robust={pct(r['robust_accuracy'])}%"
                     + (f"  target hit={pct(target)}%" if target is not None else "")
                     + "".join(f"  {name}={pct(acc)}%" for name, acc in r.get("per_attack", {}).items())
                     + f"  zero gradient: {zero_gradient(r['zero_gradient'])}")
    return "\n".join(lines)


def zero_gradient(value: float | None | dict) -> str:
    """The share of images with an exactly zero input gradient, per attack for autoattack."""
    if isinstance(value, dict):
        return ", ".join(f"{name} {zero_gradient(v)}" for name, v in value.items())
    return "not measured" if value is None else f"{pct(value)}%"


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def transfer_arguments(command: argparse.ArgumentParser) -> None:
    for role in ("sources", "targets"):
        command.add_argument(f"--{role}", nargs="+", required=True, metavar="CKPT",
                             help="checkpoint files or catalog names")
    command.add_argument("--attack", default="ifgsm", choices=list_attacks(), help="default ifgsm (also mifgsm, "
                         "difgsm, tifgsm)")
    default = paper_spec("ifgsm")
    command.add_argument("--eps", type=float, help=f"linf budget (default: the attack's, ifgsm {default.eps:.4g})")
    command.add_argument("--steps", type=int, help=f"iterations (default: the attack's, ifgsm {default.steps})")
    option(command, "--seed", AttackSpec, "seed", "seeds DI-FGSM's random resizing", type=int)
    data_options(command)


def transfer(args: argparse.Namespace) -> dict:
    from core.transfer import transfer_matrix

    spec = paper_spec(args.attack, seed=args.seed)
    spec = replace(spec, eps=spec.eps if args.eps is None else args.eps,
                   steps=spec.steps if args.steps is None else args.steps)
    sources, targets = ([checkpoint_arg(args, a) for a in names] for names in (args.sources, args.targets))
    m = transfer_matrix(sources, targets, spec, eval_data(args), run_context(args))
    return {"sources": [source(c) for c in sources],
            "targets": [source(c) for c in targets], "dataset": m.data.dataset,
            "attack": {**config_dict(spec, typed=False), "threat": spec.entry.threat},
            "cells": [[{**m.cells[i, j].measured(), "white_box": (i, j) in m.white_box} for j in range(len(targets))]
                      for i in range(len(sources))],
            "row_average": [m.row_average(i) for i in range(len(sources))]}


def transfer_text(payload: dict) -> str:
    """Success rate (%) per source and target, white-box cells marked *, the row average last (as Table A8)."""
    names = [t["name"] for t in payload["targets"]]
    width = max(12, *(len(n) for n in names))
    lines = [f"{payload['attack']['name']} on {payload['dataset']}: attack success rate (%)",
             " " * 28 + "".join(f"{n[:width]:>{width + 2}}" for n in names) + "     avg"]
    for row_source, row, avg in zip(payload["sources"], payload["cells"], payload["row_average"]):
        cells = "".join(f"{pct(c['success_rate']) + ('*' if c['white_box'] else ' '):>{width + 2}}" for c in row)
        lines.append(f"{row_source['name'][:28]:<28}{cells}{pct(avg):>8}")
    return "\n".join(lines)


def corruption_arguments(command: argparse.ArgumentParser) -> None:
    checkpoint_positional(command)
    command.add_argument("--corruptions", nargs="+", default=list(CORRUPTIONS), metavar="NAME",
                         help=f"default all provided: {', '.join(CORRUPTIONS)}")
    command.add_argument("--severities", nargs="+", type=int, default=list(SEVERITIES), metavar="S",
                         help="1-5 (default all)")
    option(command, "--seed", CorruptionConfig, "seed", "seeds the corruptions' random draws", type=int)
    option(command, "--source", CorruptionConfig, "source", "cifar10c: the published CIFAR-10-C arrays "
           "(NORMSCOPE_CIFAR10C)", choices=IMAGE_SOURCES)
    data_options(command)


def corruptions(args: argparse.Namespace) -> dict:
    from core.corruptions import corruption_sweep

    ckpt, data = checkpoint_arg(args), eval_data(args)
    sweep = corruption_sweep(ckpt, tuple(args.corruptions), tuple(args.severities), data, args.seed, args.source,
                             run_context(args))
    return {**sweep, "checkpoint": source(ckpt)}


def corruption_text(payload: dict) -> str:
    """Accuracy (%) per corruption and severity, then the mean corruption error."""
    by = {(c["corruption"], c["severity"]): c["accuracy"] for c in payload["cells"]}
    severities = sorted({s for _, s in by})
    lines = [f"{payload['checkpoint']['name']} on {payload['dataset']} ({payload['source']}, n={payload['n']}): "
             f"accuracy (%), clean {pct(payload['clean_accuracy'])}",
             f"{'':18}" + "".join(f"{'s' + str(s):>7}" for s in severities)]
    names = dict.fromkeys(c for c, _ in by)
    lines += [f"{name:18}" + "".join(f"{pct(by[name, s]):>7}" for s in severities) for name in names]
    return "\n".join(lines + [f"mean corruption error {pct(payload['mean_corruption_error'])}% (relative to clean "
                              f"{pct(payload['relative_mean_corruption_error'])}%)"])


def train_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("--preset", default="cpu", choices=list(PRESETS), help="the settings the flags below "
                         "change (python -m core list presets; default cpu)")
    command.add_argument("--out", required=True, help="checkpoint path without suffix")
    config_options(command, TrainConfig, skip=("preset",), overrides=True)


def train(args: argparse.Namespace) -> dict:
    """``train``: a training job in the foreground (the runner of background jobs), on the preset with overrides."""
    from core import jobs
    from core.device import resolve_device
    from core.train import preset

    config = preset(args.preset, **config_settings(args))
    resolve_device(args.device)  # a device this machine lacks fails here, not inside the job
    job = jobs.create("train", {"config": config.to_dict(), "out": args.out, "device": args.device}, title=args.out)
    status = jobs.run(job, None if args.json else ConsoleProgress())
    return {"job": job.id, "state": status["state"], **(status.get("result") or {})}


def feature_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("action", choices=["extract", "train", "cross-eval", "list"])
    command.add_argument("checkpoints", nargs="*", metavar="CKPT", help="source checkpoint files or catalog names")
    option(command, "--kind", FeatureConfig, "kind", "D_R needs an adversarially trained source", choices=FEATURE_KINDS)
    command.add_argument("--preset", default="cpu", choices=list(FEATURE_PRESETS), help="paper: 50k images, Eq. A2 "
                         "with 1000 steps, Table A5 training; cpu: 2000 images, 100 steps")
    command.add_argument("--start", default="", help="D_conflict: the id of the D_R dataset its attack starts from")
    trained = feature_train_config(field_default(FeatureConfig, "kind"))
    command.add_argument("--arch", help=f"the trained model's architecture (default: {trained.arch}; cross-eval: "
                         f"{FEATURE_ARCH})")
    command.add_argument("--norm", default=trained.norm, help=f"train: the trained model's normalization (default "
                         f"{trained.norm})")
    command.add_argument("--norms", nargs="+", default=list(PAPER_NORMS), help="cross-eval: the target normalizations")
    command.add_argument("--epochs", type=int, help="override the preset's training epochs")


def features(args: argparse.Namespace) -> dict | list:
    """``features extract|train|cross-eval|list``: the feature-dataset experiments of :mod:`core.features`."""
    from core import features

    if args.action == "list":
        return features.list_feature_datasets()
    if not args.checkpoints:
        raise ParameterError(f"features {args.action} needs at least one source checkpoint")
    sources, run = [checkpoint_arg(args, c) for c in args.checkpoints], run_context(args)
    config = features.feature_config(args.kind, args.preset, start=args.start)
    if args.action == "extract":
        extracted = [features.feature_dataset(s, config, run) for s in sources]
        return [{**r.measured(), "source": source(s), "config": config_dict(r.config)}  # source: the full summary
                for s, r in zip(sources, extracted)]
    epochs = {} if args.epochs is None else {"epochs": args.epochs}
    if args.action == "train":
        arch = {"arch": args.arch} if args.arch else {}
        trained = features.feature_train_config(args.kind, norm=args.norm, preset=args.preset, **arch, **epochs)
        r = features.feature_training(sources[0], features.FeatureTrainingConfig(config, trained), run)
        return {"source": source(sources[0]),
                "target": {"arch": trained.arch, "norm": trained.norm}, **r.measured()}
    arch = args.arch or features.FEATURE_ARCH
    matrix = features.cross_evaluation(sources, [s.spec.norm for s in sources], args.kind, arch, tuple(args.norms),
                                       args.preset, run)
    return {"kind": args.kind, "preset": args.preset, "arch": arch,
            "sources": [source(s) for s in sources], **matrix.to_dict()}


def finding_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("--finding", nargs="+", default=[], choices=[f.key for f in FINDINGS], help="only these")
    command.add_argument("--pair", nargs=2, metavar=("TREATED", "CONTROL"),
                         help="score one pair of catalog names (the normalized model first) instead of the zoo's")


def findings(args: argparse.Namespace) -> dict:
    """The scoreboard from the cache (the zoo's shipped results seeded first, as the dashboard does)."""
    from core.cache import ResultCache
    from core.catalog import shipped_seeds
    from core.findings import scoreboard

    cache = ResultCache()
    for shipped in shipped_seeds():
        cache.seed(shipped)
    return {"rule": VERDICT_RULE, "findings": scoreboard(cache, tuple(args.finding), args.pair)}


def findings_text(payload: dict) -> str:
    """Each finding's verdict, then its rows: effect in points (the paper's direction positive) and interval."""
    lines = []
    for f in payload["findings"]:
        lines.append(f"[{f['verdict']}] {f['number']}. {f['claim']} ({f['source']})")
        lines += [f"    {r['verdict']:<13} {effect_text(r):<22} {r['measure']}: {r['pair']}"
                  + (f" ({row_note(r)})" if row_note(r) else "") for r in f["rows"]]
    return "\n".join(lines + ["", payload["rule"]])


def registry_listing(what: str, device: str | None) -> list[dict]:
    """``list WHAT``: a registry's entries."""
    from core.speed import precision_speed, speed_note

    if what == "models":
        return [{"name": n, "norms": list(model_entry(n).norms), "family": model_entry(n).family}
                for n in list_models()]
    if what == "attacks":
        return [{"name": n, "title": a.title, "threat": a.threat, "paper_eps": a.default("eps"),
                 "paper_steps": a.default("steps", 1), "description": a.description} for n, a in ATTACKS.items()]
    if what == "experiments":
        return [{"name": n, "config": e.config_type.__name__, "description": e.description}
                for n, e in registry().items()]
    if what == "datasets":
        present = available_datasets()
        return [{"name": n, "available": n in present} for n in DATASETS]
    if what == "precisions":
        return [{"name": p, "speed_vs_fp32": v, "note": speed_note(p, device)}
                for p, v in precision_speed(device).items()]
    return [{"name": n, **{k: config_dict(v) for k, v in p.items()}} for n, p in PRESETS.items()]


def jobs_command(args: argparse.Namespace) -> dict | list:
    from core import jobs

    if args.action == "list":
        return [{"id": j.id, **j.spec, **j.status} for j in jobs.list_jobs(args.root)]
    if not args.job_id:
        raise ParameterError(f"jobs {args.action} needs a job id")
    job = jobs.get(args.job_id, args.root)
    if args.action == "cancel":
        job.cancel()
    elif args.action == "resume":
        jobs.resume(job)
    elif args.action == "run":
        jobs.run(job)
    return {"id": job.id, **job.status, "log": job.log(20)}


def jobs_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("action", choices=["list", "show", "cancel", "resume", "run"])
    command.add_argument("job_id", nargs="?")
    command.add_argument("--root", help="cache root holding jobs/ (default: NORMSCOPE_CACHE)")


def get_data(args: argparse.Namespace) -> dict:
    """``data get cifar10``: torchvision's CIFAR-10 into --data-root / NORMSCOPE_DATA (nothing if already there)."""
    from core.data import download_cifar10

    folder = download_cifar10(progress=None if args.json else ConsoleProgress())
    return {"dataset": args.name, "path": str(folder), "available": available_datasets()}


def data_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("action", choices=["get"])
    command.add_argument("name", choices=["cifar10"])


def list_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("what", choices=["models", "attacks", "experiments", "datasets", "presets", "precisions"])


LOADS, COMPUTES = (loads_checkpoints,), (loads_checkpoints, computes)
COMMANDS = {c.name: c for c in [
    Command("info", "print a checkpoint's metadata", lambda args: checkpoint_arg(args).describe(),
            checkpoint_positional, flags=LOADS),
    Command("run", "any registered experiment on a checkpoint: its config's defaults, --set to change fields (what "
            "every page computes, by name)", run_experiment, run_arguments, flags=COMPUTES),
    Command("eval", "clean and robust accuracy under an attack", evaluate, eval_arguments, eval_text, flags=COMPUTES),
    Command("transfer", "transfer matrix: examples crafted on each source, success on each target", transfer,
            transfer_arguments, transfer_text, flags=COMPUTES),
    Command("corruptions", "accuracy under the CIFAR-10-C corruptions, and the mean corruption error (Sec. 3.2)",
            corruptions, corruption_arguments, corruption_text, flags=COMPUTES),
    *(experiment_command(e) for e in registry().values() if e.command),
    Command("train", "train a model in the foreground (same runner as background jobs)", train, train_arguments),
    Command("features", "feature datasets (App. C, F): extract, train on one, cross-evaluate, list", features,
            feature_arguments, flags=COMPUTES),
    Command("findings", "the paper's findings scored on the zoo's comparable pairs, each with its effect, 95 %% "
            "interval and verdict (cached results only)", findings, finding_arguments, findings_text),
    Command("list", "list registries: models, attacks, experiments, datasets, presets; precisions (each one's "
            "training speed here, probed once per machine)", lambda args: registry_listing(args.what, args.device),
            list_arguments, version=2),  # list/2: an attack's "norm" became "threat"
    Command("data", "get a dataset: `data get cifar10` downloads torchvision's CIFAR-10 (md5-checked)", get_data,
            data_arguments),
    Command("jobs", "background jobs", jobs_command, jobs_arguments)]}
