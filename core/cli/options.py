"""The command line's shared flags, in one place: flags made from a config dataclass's fields (as ``run --set``
names them), the flags every command has, and those of the commands that load checkpoints or compute."""
from __future__ import annotations

import argparse
import json
import typing
from collections import Counter
from typing import Any

from core.cache import ResultCache
from core.catalog import find_checkpoint
from core.checkpoints import Checkpoint, InputNormalization
from core.config import Setting, field_default, settings_of
from core.data import DATASETS
from core.errors import ParameterError
from core.experiments import RunContext
from core.progress import ConsoleProgress


def flag_kind(setting: Setting) -> dict | None:
    """argparse's reading of a config field (None: not a flag, such as a nested ``AttackSpec | None``)."""
    if setting.scalar is bool:
        return {"action": argparse.BooleanOptionalAction}
    if setting.scalar is not None:
        return {"type": setting.scalar, **({"choices": setting.choices} if setting.choices else {})}
    item = typing.get_args(setting.kind)
    return {"type": item[0], "nargs": "+"} if typing.get_origin(setting.kind) is tuple and item[1:] == (...,) else None


def config_options(command: argparse.ArgumentParser, config_type: type, skip: tuple[str, ...] = (),
                   overrides: bool = False) -> None:
    """A flag per field of ``config_type`` (:func:`core.config.settings_of`), named by the field (``--per-class``;
    a nested field whose name another also has, by its path: ``--ligs-seed``), its comment as help, defaulting to
    the config's default (``overrides``: to None, changing only what is given). :func:`config_settings` reads
    them back as dotted settings."""
    found = [s for s in settings_of(config_type) if s.path not in skip and flag_kind(s) is not None]
    names = Counter(s.name for s in found)
    paths = dict(command.get_default("config_fields") or {})
    for s in found:
        dest = (s.path if names[s.name] > 1 else s.name).replace(".", "_")
        paths[dest] = s.path
        note = f"{s.path}: {s.note}" if "." in s.path and s.note else s.note  # which part a nested field sets
        shown = "default: the preset's" if overrides else f"default {s.default}"
        command.add_argument(f"--{dest.replace('_', '-')}", dest=dest, default=None if overrides else s.default,
                             help=f"{note} ({shown})" if note else shown, **flag_kind(s))
    command.set_defaults(config_fields=paths)


def config_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings that :func:`config_options`'s flags were given, by dotted path (None: left as configured)."""
    values = {path: getattr(args, dest) for dest, path in args.config_fields.items()}
    return {path: tuple(v) if isinstance(v, list) else v for path, v in values.items() if v is not None}


def option(command: argparse.ArgumentParser, flag: str, config_type: type, name: str, help: str, **kw) -> None:
    """``flag`` defaulting to ``config_type``'s field ``name``, its help text stating that default."""
    default = field_default(config_type, name)
    command.add_argument(flag, default=default, help=f"{help} (default {default})" if help else f"default {default}",
                         **kw)


def every_command(command: argparse.ArgumentParser) -> None:
    command.add_argument("--json", action="store_true", help="machine-readable output")
    command.add_argument("--device", help="cuda or cpu (default: cuda if available)")
    command.add_argument("--threads", type=int, help="CPU threads for torch")
    command.add_argument("--data-root", help="folder of torchvision datasets (sets NORMSCOPE_DATA)")
    command.add_argument("--download", action="store_true",
                         help="download the named torchvision dataset into --data-root if missing")
    command.add_argument("--debug", action="store_true", help="a user error's traceback too (bugs always show one)")


def loads_checkpoints(command: argparse.ArgumentParser) -> None:
    """The flags read by :func:`checkpoint_arg`."""
    command.add_argument("--trained-on", metavar="DATASET", choices=DATASETS,
                         help="what the model was trained on, for checkpoints that do not record it (e.g. cifar10 "
                              "for published weights); numbers read on other images than those are marked")
    for flag in ("mean", "std"):
        command.add_argument(f"--{flag}", type=float, nargs=3, metavar=("R", "G", "B"),
                             help=f"input normalization {flag}, for checkpoints that do not record theirs (with "
                                  f"--{'std' if flag == 'mean' else 'mean'})")


def computes(command: argparse.ArgumentParser) -> None:
    """The flag read by :func:`run_context`."""
    command.add_argument("--no-cache", action="store_true", help="recompute instead of reading the cache")


def checkpoint_arg(args: argparse.Namespace, name: str | None = None) -> Checkpoint:
    """The command's checkpoint (``name``, else its ``checkpoint`` argument): a file or a catalog name, with the
    shared flags applied (``--mean``/``--std``, ``--trained-on``)."""
    if (args.mean is None) != (args.std is None):
        raise ParameterError("give --mean and --std together (3 values each), or neither")
    normalization = None if args.mean is None else InputNormalization(tuple(args.mean), tuple(args.std))
    ckpt = find_checkpoint(name or args.checkpoint, normalization)
    if args.trained_on and ckpt.dataset not in ("unknown", args.trained_on):
        raise ParameterError(f"{ckpt.name}: its metadata records training on {ckpt.dataset}, not {args.trained_on}; "
                             "leave out --trained-on")
    if args.trained_on:
        ckpt.meta["dataset"] = args.trained_on
    return ckpt


def run_context(args: argparse.Namespace) -> RunContext:
    """One cache handle for the whole command (a RunContext without one opens a new handle at every lookup)."""
    return RunContext(ResultCache(), args.device, None if args.json else ConsoleProgress(), refresh=args.no_cache)


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
