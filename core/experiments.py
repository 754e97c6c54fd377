"""Experiments: named, cached computations on a checkpoint, each declared once.

An experiment is its math plus one declaration; the declaration names it, fixes its config type
(a frozen dataclass: the UI's form, the cache key and the record of how a result was made) and
registers it, so that pages, the CLI, background jobs and ``python -m core list experiments`` all
find it by name::

    @experiment("ligs", LIGSConfig, "LIGS: similarity of input gradients under a small perturbation (Sec. 4)")
    def ligs_report(checkpoint: Checkpoint, config: LIGSConfig, run: RunContext) -> LIGSReport:
        x, y = eval_tensors(config.data, checkpoint.spec.num_classes)
        result = ligs(run.model(checkpoint), x, y, config.ligs, progress=run.progress)
        return LIGSReport.of(result, y, checkpoint.spec.num_classes)

    ligs_report(checkpoint_or_catalog_entry, LIGSConfig(), RunContext(cache=...))   # -> LIGSReport, or MISSING

Its result is a typed record (:mod:`core.records`), the type its compute is annotated to return.

The key is the experiment's name + the code version + the checkpoint's sha256 + the config (with
``data.dataset="auto"`` resolved to the checkpoint's own dataset), so a lookup needs only a
subject's ``sha256`` and ``dataset``: a catalog entry is enough, and weights load only to compute.
"""
from __future__ import annotations

import os
import typing
from pathlib import Path
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Protocol

import torch

from core._version import CODE_VERSION
from core.cache import MISSING, Missing, ResultCache, make_key
from core.checkpoints import Checkpoint, CheckpointError, load_checkpoint
from core.config import config_dict, config_from_dict
from core.data import DataError, balanced_subset, check_dataset_name, class_names, load_dataset, resolve_name, to_float
from core.device import on_device, resolve_device
from core.errors import ParameterError
from core.progress import Progress, scaled
from core.records import Record, RecordError, Source, is_record_type
from core.serving import npz_roots

# Test images per class of every evaluation by default: the paper's 1000 samples (100 per class).
# NORMSCOPE_PER_CLASS lowers it (a talk on a slow machine); pages, CLI and precompute all read it
# here, so demo mode finds the precomputed results under the same cache keys.
DEFAULT_PER_CLASS = int(os.environ.get("NORMSCOPE_PER_CLASS", 100))

class Subject(Protocol):
    """What an experiment runs on: a loaded :class:`Checkpoint`, a catalog entry or an :class:`Evaluation`."""

    sha256: str
    path: Any
    name: str

    @property
    def dataset(self) -> str: ...


@dataclass(frozen=True)
class EvalData:
    """Which images an evaluation uses: a balanced subset (``per_class`` per class) of a split."""

    dataset: str = "auto"  # auto: the checkpoint's own dataset
    split: str = "test"  # the split the subset is drawn from
    per_class: int = DEFAULT_PER_CLASS  # a balanced subset: this many images of each class

    def __post_init__(self) -> None:
        if self.per_class < 1:
            raise ParameterError(f"images per class must be at least 1, got {self.per_class}")
        # a dataset name reaches files: refused here, before anything is keyed or read, where it is not plain
        check_dataset_name(self.dataset, npz_roots() if self.dataset.startswith("npz:") else None)


def load_verified(path: str, sha256: str) -> Checkpoint:
    """The checkpoint at ``path``, refused if its weights changed since they were listed as ``sha256``
    (results would be cached under the wrong weights)."""
    checkpoint = load_checkpoint(path)
    if checkpoint.sha256 != sha256:
        raise CheckpointError(f"{path} changed on disk since it was listed; reload the page")
    return checkpoint


def load_subject(subject: Subject) -> Checkpoint:
    """The subject's checkpoint: itself if loaded, else loaded from its path."""
    return subject if isinstance(subject, Checkpoint) else load_verified(str(subject.path), subject.sha256)


@dataclass(frozen=True)
class RunContext:
    """How experiments run: the result cache (None: the default one), the device (None: CUDA if present),
    who hears progress, whether a miss may be computed (``cached_only``: demo mode never computes) or a cached
    result computed again (``refresh``), and
    how a subject's weights are loaded (the dashboard shares loaded models across sessions)."""

    cache: ResultCache | None = None
    device: str | torch.device | None = None
    progress: Progress | None = None
    cached_only: bool = False
    refresh: bool = False  # computed again though cached (``--no-cache``); the new result replaces the cached one
    load: Callable[[Subject], Checkpoint] = load_subject

    @property
    def results(self) -> ResultCache:
        return self.cache if self.cache is not None else ResultCache()

    @property
    def torch_device(self) -> torch.device:
        return resolve_device(self.device)

    def model(self, checkpoint: Checkpoint) -> torch.nn.Module:
        """The checkpoint's model on this run's device, the loaded (maybe shared) object left where it is."""
        return on_device(checkpoint.model, self.torch_device)

    def needed(self, need: Need) -> Record:
        """The cached result of a prerequisite; a clear error if it was not computed first."""
        found = get_experiment(need.experiment).read(self.results.get(make_key(need.experiment, need.sha256,
                                                                                need.config)))
        if found is MISSING:
            raise ParameterError(f"{need.experiment} of checkpoint {need.sha256[:12]} is not computed yet: it is "
                                 "needed first (core.planning.plan lists it before what needs it)")
        return found

    def report(self, fraction: float, message: str = "") -> None:
        """Tell the progress callback, if any."""
        if self.progress is not None:
            self.progress(fraction, message)

    def part(self, index: int, count: int) -> "RunContext":
        """The context of sub-task ``index`` of ``count``: its progress maps onto that slice of this one's."""
        return replace(self, progress=scaled(self.progress, index / count, (index + 1) / count))


def always_current(result: Record) -> bool:
    """Most results describe only their inputs, which the key holds: never stale."""
    return True


def stores(*fields: str) -> Callable[[Record], bool]:
    """A ``current`` test for a result that gained ``fields`` (per-image outcomes): one cached before they were
    stored is still shown by cached-only runs, and computed again by the others."""
    def has_fields(result: Record) -> bool:
        return all(getattr(result, name) is not None for name in fields)
    return has_fields


@dataclass(frozen=True)
class Need:
    """A result that an experiment needs before it can compute: ``experiment`` on the checkpoint ``sha256`` under
    ``config`` (already resolved: it is keyed as it is)."""

    experiment: str
    sha256: str
    config: Any


def needs_nothing(config: Any) -> list[Need]:
    return []


# The unit of an experiment's work (:attr:`Experiment.work`), in which a public server limits one request: one image
# through the model once, forward and backward (an attack's step, a LIGS gradient; a forward pass alone counts as
# one too). A request's work is these passes times the model's cost (core.cost: a WRN-28-10's pass is 66 passes of
# the reference model), summed over its evaluations: so many passes of the reference model.
WORK_UNIT = "image passes"


def images_in(config: Any) -> int:
    """The images a config reads: each data-bearing field's balanced subset (``per_class`` x classes)."""
    return sum(d.per_class * len(class_names(d.dataset)) for d in eval_data(config).values())


def attack_work(config: Any) -> int:
    """The work of attacking a config's images with its ``attack``: its gradient passes and one clean pass each."""
    return images_in(config) * (config.attack.passes + 1)


def nothing_trained(config: Any) -> float:
    return 0.0


@dataclass(frozen=True)
class Experiment:
    """A registered experiment: ``experiment(subject, config, run)`` -> its result record, or MISSING."""

    name: str
    config_type: type
    compute: Callable[[Checkpoint, Any, RunContext], Record] = field(repr=False)
    description: str
    result_type: type[Record]
    # Whether a cached result still stands for what it describes (an extracted dataset's files may be gone):
    # a stale one is still shown by cached-only runs, and computed again by the others.
    current: Callable[[Record], bool] = field(default=always_current, repr=False)
    # What must be cached before this computes (a planner computes it first; see core.planning).
    requires: Callable[[Any], list[Need]] = field(default=needs_nothing, repr=False)
    # Its size in WORK_UNIT (image passes through the subject's model: everything its compute runs, forward-only
    # passes included), as a public server limits a request (times the model's cost): by default each image once.
    work: Callable[[Any], int] = field(default=images_in, repr=False)
    # Its own command line command (``python -m core COMMAND CKPT``, its config's fields as flags) and that
    # command's text output, a summary of the record; without one it is reached by ``run``.
    command: str | None = None
    summary: Callable[[Record], str] | None = field(default=None, repr=False)
    # Whether it trains a model (minutes to hours, a checkpoint left in the cache): a public server never offers it.
    trains: bool = False
    # The work of the model it trains, in passes of the reference model (core.cost; its architecture is the
    # config's, not the subject's): added to ``work`` times the subject's cost.
    trained_work: Callable[[Any], float] = field(default=nothing_trained, repr=False)

    def resolved(self, subject: Subject, config: Any) -> Any:
        """The config as keyed: each :class:`EvalData` field's ``dataset="auto"`` replaced by the subject's own
        dataset (fields are found by type, whatever their name)."""
        config = self.config_type() if config is None else config
        if not isinstance(config, self.config_type):
            raise TypeError(f"{self.name} takes a {self.config_type.__name__}, got {type(config).__name__}")
        data = {name: data_for(subject, value) for name, value in eval_data(config).items()}
        return replace(config, **data) if data else config

    def key(self, subject: Subject, config: Any = None) -> str:
        return make_key(self.name, subject.sha256, self.resolved(subject, config))

    def read(self, stored: dict | Missing) -> Record | Missing:
        """A cached result as this experiment's record; MISSING for one stored with fields that no longer fit
        (it is computed again where computing is allowed)."""
        try:
            return stored if stored is MISSING else self.result_type.from_dict(stored, self.config_type)
        except RecordError:
            return MISSING

    def __call__(self, subject: Subject, config: Any = None, run: RunContext = RunContext()) -> Record | Missing:
        config = self.resolved(subject, config)
        key, cache = make_key(self.name, subject.sha256, config), run.results
        found = self.read(cache.get(key))
        if run.cached_only or (found is not MISSING and self.current(found) and not run.refresh):
            return found
        checkpoint = run.load(subject)
        result = replace(self.compute(checkpoint, config, run), **provenance(checkpoint, config))
        cache.set(key, result.to_dict())
        return result


EXPERIMENTS: dict[str, Experiment] = {}


def experiment(name: str, config_type: type, description: str, current: Callable[[Record], bool] = always_current,
               requires: Callable[[Any], list[Need]] = needs_nothing, work: Callable[[Any], int] = images_in,
               command: str | None = None, summary: Callable[[Record], str] | None = None,
               trains: bool = False,
               trained_work: Callable[[Any], float] = nothing_trained) -> Callable[[Callable], Experiment]:
    """Declare ``compute(checkpoint, config, run) -> SomeRecord`` as the cached experiment ``name``; the record
    type is the one its return annotation names (``current``, ``requires``, ``work``, ``command`` and
    ``summary``, ``trains``, ``trained_work``: see :class:`Experiment`)."""
    def declare(compute: Callable[[Checkpoint, Any, RunContext], Record]) -> Experiment:
        if name in EXPERIMENTS:
            raise ParameterError(f"experiment {name!r} is declared twice")
        result_type = typing.get_type_hints(compute).get("return")
        if not is_record_type(result_type):
            raise TypeError(f"experiment {name!r} must be annotated to return a Record subclass, not {result_type}")
        if (command is None) != (summary is None):
            raise TypeError(f"experiment {name!r}: a command needs its text summary, and a summary its command")
        EXPERIMENTS[name] = Experiment(name, config_type, compute, description, result_type, current, requires, work,
                                       command, summary, trains, trained_work)
        return EXPERIMENTS[name]
    return declare


def registry() -> dict[str, Experiment]:
    """Every declared experiment, by name (the package's ``__init__`` imports the modules that declare them)."""
    return EXPERIMENTS


def offered(public: bool) -> dict[str, Experiment]:
    """The experiments a server offers its visitors: every one on one's own machine; on a public server none that
    trains, since no work limit bounds a training run's minutes and the checkpoint it leaves."""
    return {name: e for name, e in registry().items() if not (public and e.trains)}


def get_experiment(name: str) -> Experiment:
    if name not in registry():
        raise ParameterError(f"unknown experiment {name!r}; choose from {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[name]


def eval_data(config: Any) -> dict[str, EvalData]:
    """A config's data-bearing fields (those holding an :class:`EvalData`), by name."""
    return {f.name: value for f in fields(config) if isinstance(value := getattr(config, f.name), EvalData)}


def data_of(config: Any) -> EvalData | None:
    """The images a config is evaluated on: its (first) data-bearing field, None if it has none."""
    return next(iter(eval_data(config).values()), None)


def on_dataset(config: Any, dataset: str) -> Any:
    """``config`` with every data-bearing field on ``dataset``."""
    return replace(config, **{name: replace(data, dataset=dataset) for name, data in eval_data(config).items()})


def data_for(subject: Subject, data: EvalData) -> EvalData:
    """``data`` with ``auto`` resolved: the subject's own dataset, else the best one on this machine."""
    name = data.dataset if data.dataset != "auto" else subject.dataset
    return replace(data, dataset=resolve_name(name if name != "unknown" else "auto"))


def eval_tensors(data: EvalData, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The images (float in [0, 1]) and labels of ``data``, for a model with ``num_classes`` outputs."""
    dataset = load_dataset(data.dataset)
    if dataset.num_classes != num_classes:
        raise DataError(f"the model has {num_classes} classes but {dataset.name} has {dataset.num_classes}")
    x, y = dataset.split(data.split)
    keep = balanced_subset(y, data.per_class, num_classes)
    return to_float(x[keep]), y[keep]


def provenance(checkpoint: Checkpoint, config: Any) -> dict[str, Any]:
    """How a result was made (:class:`Record`'s fields): which weights, config and code, and on which dataset."""
    data = data_of(config)
    return {"checkpoint": Source.of(checkpoint), "config": config, "code_version": CODE_VERSION,
            "dataset": None if data is None else data.dataset}


@dataclass(frozen=True)
class Evaluation:
    """One experiment on one checkpoint file, as plain data: what a page asks for and a background job
    ("evaluate") runs. It is itself a subject (path, sha256, dataset), so a lookup loads no weights."""

    experiment: str
    config: Any
    path: str
    sha256: str
    dataset: str = "unknown"

    @property
    def name(self) -> str:
        return Path(self.path).stem

    @classmethod
    def of(cls, subject: Subject, experiment: Experiment, config: Any) -> "Evaluation":
        return cls(experiment.name, config, str(subject.path), subject.sha256, subject.dataset)

    def run(self, run: RunContext = RunContext()) -> Record | Missing:
        return get_experiment(self.experiment)(self, self.config, run)

    def to_dict(self) -> dict:
        return {"experiment": self.experiment, "config": config_dict(self.config), "path": self.path,
                "sha256": self.sha256, "dataset": self.dataset}

    @classmethod
    def from_dict(cls, d: dict) -> "Evaluation":
        config = config_from_dict(get_experiment(d["experiment"]).config_type, d["config"])
        return cls(d["experiment"], config, d["path"], d["sha256"], d.get("dataset", "unknown"))


def run_evaluations(evaluations: list[Evaluation], run: RunContext = RunContext()) -> dict:
    """Compute every evaluation not cached yet, loading each checkpoint file once; results land in the cache."""
    loaded: dict[str, Checkpoint] = {}

    def load(subject: Subject) -> Checkpoint:
        if subject.path not in loaded:
            loaded[subject.path] = run.load(subject)
        return loaded[subject.path]

    for i, evaluation in enumerate(evaluations):
        evaluation.run(replace(run.part(i, len(evaluations)), load=load))
    return {"evaluations": len(evaluations), "checkpoints": len(loaded)}
