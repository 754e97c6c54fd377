"""How the app is served: ``local`` (the default: one user, everything on) or ``public`` (a demo for visitors).

A public server is read-only for its visitors: nobody clears the shared cache, trains, starts background jobs or
sees another visitor's upload (uploads are off, or private to the browser session and deleted with it), and one
request may ask for a bounded amount of new computation. The operator sets it in the environment or in a TOML
file (``NORMSCOPE_CONFIG``, else ``.streamlit/normscope.toml`` in the working directory)::

    [public]
    enabled = true
    uploads = "session"             # or "off"
    max_work_per_request = 20000    # passes of the reference model one button press may compute (see below)
    max_concurrent_computations = 2 # on the whole server; the next visitor is asked to wait
    max_computations_per_client = 1 # of those, at once from one client address (all its tabs)

Environment variables override the file: ``NORMSCOPE_PUBLIC=1``, ``NORMSCOPE_PUBLIC_UPLOADS``,
``NORMSCOPE_MAX_WORK``, ``NORMSCOPE_MAX_COMPUTATIONS``, ``NORMSCOPE_MAX_CLIENT_COMPUTATIONS``.

A request's work is counted in image passes (:data:`core.experiments.WORK_UNIT`): one image through one model,
forward and backward, times that model's cost (:mod:`core.cost`: a pass through the reference model, the zoo's
slowest, is 1; a WRN-28-10's 66), summed over everything the button computes. An attack costs its steps per image
(APGD-T: x 9 targets) and its predictions, a Fourier heat map a pass per basis, a loss surface a pass per grid
point, a training run its epochs, probes and test pass on the architecture it trains; see each experiment's
``work``.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Mapping

from core.data.sources import data_root
from core.errors import ParameterError

UPLOAD_MODES = ("off", "session")
ENVIRONMENT = {"enabled": "NORMSCOPE_PUBLIC", "uploads": "NORMSCOPE_PUBLIC_UPLOADS",
               "max_work_per_request": "NORMSCOPE_MAX_WORK",
               "max_concurrent_computations": "NORMSCOPE_MAX_COMPUTATIONS",
               "max_computations_per_client": "NORMSCOPE_MAX_CLIENT_COMPUTATIONS"}
# Settings of earlier versions: named with their replacement, never ignored (an image count is not a work count).
REPLACED = {"NORMSCOPE_MAX_IMAGES": "NORMSCOPE_MAX_WORK", "max_images_per_request": "max_work_per_request"}


class ServingError(ParameterError):
    """A serving setting that cannot be used (the message names the setting and where it came from)."""


class LimitExceeded(ParameterError):
    """A request over a public server's limits; the message says what to ask for instead."""


@dataclass(frozen=True)
class ServingPolicy:
    """What visitors may do. The defaults of the limits are sized for a 2-core CPU server: 20,000 passes of the
    reference model (the zoo's slowest, a ResNeXt-29; PGD-20 on about 870 images) took 60 s there on one thread
    beside a training (32 s on two idle ones), and a request's count is scaled by its model's cost (core.cost), so
    a WRN-28-10 at the limit took 49 s (benchmarks/work_rate.py --full-limit, BENCHMARKS.md). One client address
    holds at most ``max_computations_per_client`` of the slots, so one visitor's tabs cannot hold them all."""

    enabled: bool = False
    uploads: str = "session"
    max_work_per_request: int = 20_000
    max_concurrent_computations: int = 2
    # Behind a reverse proxy every visitor has the proxy's address: there set it to max_concurrent_computations.
    max_computations_per_client: int = 1

    def __post_init__(self) -> None:
        if self.uploads not in UPLOAD_MODES:
            raise ServingError(f"uploads must be one of {', '.join(UPLOAD_MODES)}, got {self.uploads!r}")
        for name in ("max_work_per_request", "max_concurrent_computations", "max_computations_per_client"):
            if getattr(self, name) < 1:
                raise ServingError(f"{name} must be at least 1, got {getattr(self, name)}")

    @property
    def public(self) -> bool:
        return self.enabled

    @property
    def uploads_allowed(self) -> bool:
        return not self.enabled or self.uploads != "off"


def _parse(name: str, value: object, source: str) -> object:
    kind = {f.name: f.type for f in fields(ServingPolicy)}[name]
    try:
        if kind == "bool":
            return _truth(value)
        return int(value) if kind == "int" else str(value)
    except (TypeError, ValueError):
        raise ServingError(f"{source}: {name} = {value!r} is not a valid {kind}") from None


def _truth(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in ("1", "0", "true", "false", "yes", "no", "on", "off", ""):
        raise ParameterError(text)
    return text in ("1", "true", "yes", "on")


def config_path(environ: Mapping[str, str] = os.environ) -> Path:
    return Path(environ.get("NORMSCOPE_CONFIG") or Path.cwd() / ".streamlit" / "normscope.toml")


def from_file(path: Path) -> dict[str, object]:
    """The ``[public]`` table of a config file, parsed; {} where the file does not exist."""
    if not path.is_file():
        return {}
    try:
        table = tomllib.loads(path.read_text()).get("public", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ServingError(f"cannot read {path}: {e}") from None
    replaced(table, str(path))
    unknown = set(table) - set(ENVIRONMENT)
    if unknown:
        raise ServingError(f"{path}: unknown [public] setting(s) {', '.join(sorted(unknown))}; "
                           f"known: {', '.join(ENVIRONMENT)}")
    return {name: _parse(name, value, str(path)) for name, value in table.items()}


def replaced(settings: Mapping[str, object], source: str) -> None:
    """Refuse a setting of an earlier version, naming the one that replaced it."""
    old = sorted(set(settings) & set(REPLACED))
    if old:
        raise ServingError(f"{source}: {old[0]} is replaced by {REPLACED[old[0]]}, a limit on work in image passes "
                           "(images x attack steps; README, Serving it)")


def from_environment(environ: Mapping[str, str]) -> dict[str, object]:
    replaced(environ, "the environment")
    return {name: _parse(name, environ[var], var) for name, var in ENVIRONMENT.items() if var in environ}


def npz_roots(environ: Mapping[str, str] = os.environ) -> tuple[Path, ...] | None:
    """Where ``npz:`` datasets may be read from: anywhere on one's own machine (None); on a public server only
    under its data folder (``NORMSCOPE_DATA``), so no visitor reads another file of the server as a dataset."""
    return (data_root(),) if serving_policy(environ).public else None


def serving_policy(environ: Mapping[str, str] = os.environ) -> ServingPolicy:
    """The policy the file and then the environment set (the environment wins)."""
    settings = {**from_file(config_path(environ)), **from_environment(environ)}
    return replace(ServingPolicy(), **settings)
