"""The command line: ``python -m core COMMAND ... [--json]``, every command an entry of one table
(:data:`core.cli.commands.COMMANDS`: its arguments, what it runs, its JSON and its text).

``run`` computes any registered experiment by name from its config dataclass (``--set`` changes fields); an
experiment that declares a command (``ligs``, ``landscape``) has its own, its config's fields as flags and its
record as JSON; the others (``eval``, ``transfer``, ``corruptions``, ...) are shaped views of the paper's experiments.

``--json`` output is a stable contract (schemas ``normscope.<command>/<version>``, documented in the README): tools
may script against it. A user error (:class:`core.errors.NormScopeError`) prints one line (``{"error": ...}`` with
``--json``) and exits with status 2; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import torch

from core._version import CODE_VERSION
from core.cli.commands import COMMANDS, Command
from core.cli.options import every_command
from core.data import data_shift, load_dataset
from core.device import describe_device, resolve_device
from core.errors import NormScopeError

__all__ = ["COMMANDS", "Command", "main", "parser"]
ERROR_SCHEMA = "normscope.error/1"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"normscope core {CODE_VERSION}")
    sub = p.add_subparsers(dest="command", required=True)
    for command in COMMANDS.values():
        subparser = sub.add_parser(command.name, help=command.help)
        for add in (command.arguments, *command.flags, every_command):
            add(subparser)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    command = COMMANDS[args.command]
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.data_root:
        os.environ["NORMSCOPE_DATA"] = args.data_root
    try:
        resolve_device(args.device)  # asking for a device this machine lacks is an error, cached result or not
        if args.download:
            name = getattr(args, "dataset", "auto")  # commands without a --dataset get CIFAR-10
            load_dataset(name if name != "auto" else "cifar10", download=True)
        result = command.run(args)
        payload = with_data_shift(command.json(result))
    except NormScopeError as e:  # anything else is a bug: its traceback shows
        if args.debug:
            raise
        print(json.dumps({"schema": ERROR_SCHEMA, "error": str(e)}) if args.json else f"error: {e}",
              file=sys.stdout if args.json else sys.stderr)
        return 2
    if args.json:
        body = {"items": payload} if isinstance(payload, list) else payload
        print(json.dumps({"schema": command.schema, "code_version": CODE_VERSION,
                          "device": describe_device(resolve_device(args.device)), **body}))
    else:
        print(command.text(result))
        if isinstance(payload, dict) and payload.get("data_shift"):
            print(f"note: {payload['data_shift']}")
    return 0


def with_data_shift(payload):
    """A single checkpoint's result with ``data_shift``: what differs between its training data and the data its
    numbers were read on (null where nothing does, :func:`core.data.data_shift`)."""
    if isinstance(payload, dict) and "checkpoint" in payload and "dataset" in payload:
        payload = {**payload, "data_shift": data_shift(payload["checkpoint"]["dataset"], payload["dataset"])}
    return payload
