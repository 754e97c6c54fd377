"""A page's work, planned: which dataset each model's results are read on, what the cache holds, what is left.

A page (or a background job) asks for :class:`~core.experiments.Evaluation` s; :func:`plan` answers with a
:class:`Plan` without loading any weights:

* **where** each model's results are read: the first dataset (the data source, else the model's own; see
  :func:`core.data.evaluation_datasets`) that holds all of them, else the first one on disk, else the one whose
  cache holds the most (a fresh clone with no data still shows the zoo's shipped results);
* **found**: the results the cache holds there;
* **remaining**: what computing the rest runs, in order: each missing result after what it requires
  (:attr:`Experiment.requires`: a transfer cell needs its source's adversarial examples), each once;
* **unreachable**: per training dataset, how many results are neither cached nor computable on this machine.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Hashable, Iterable

from core.cache import MISSING
from core.cost import evaluation_work
from core.data import available_datasets, data_shift, evaluation_datasets
from core.errors import ParameterError
from core.experiments import EvalData, Evaluation, RunContext, Subject, data_of, get_experiment, on_dataset

Requests = dict[Hashable, Evaluation]


@dataclass(frozen=True)
class Plan:
    """The answer of :func:`plan`: the requests as placed, the cached results, and the work left."""

    requests: Requests
    found: dict[Hashable, dict]
    remaining: list[Evaluation]
    unreachable: dict[str, int] = field(default_factory=dict)
    # Where :attr:`work` finds a model's cost (the result cache) and loads a checkpoint whose cost is not there yet.
    run: RunContext = field(default=RunContext(), repr=False, compare=False)

    @property
    def missing(self) -> list[Hashable]:
        """The requests' keys whose results are not cached (computing :attr:`remaining` fills them)."""
        return [k for k in self.requests if k not in self.found]

    def data(self, default: EvalData) -> EvalData:
        """The images the requests are read on (one dataset when planned ``together``); ``default`` if none."""
        first = next(iter(self.requests.values()), None)
        return (data_of(first.config) if first is not None else None) or default

    @property
    def data_shifts(self) -> dict[str, list[str]]:
        """What differs where models' numbers here are read on other pixels than their training data's (genuine
        CIFAR-10 and its JPEG copy; :func:`core.data.data_shift`) -> the sha256s of those models, for the page to
        say beside them."""
        shifts: dict[str, list[str]] = {}
        for r in self.requests.values():
            shift = data_shift(r.dataset, data.dataset) if (data := data_of(r.config)) is not None else None
            if shift and r.sha256 not in shifts.get(shift, []):
                shifts.setdefault(shift, []).append(r.sha256)
        return shifts

    @property
    def work(self) -> int:
        """The size of computing :attr:`remaining` in passes of the reference model (:data:`core.experiments.WORK_UNIT`
        times each model's cost, :func:`core.cost.evaluation_work`), summed over its evaluations (an image attacked
        on two models, or by two attacks, counts twice): a public server's limit. Read only when asked: a model's
        cost is looked up (and, the first time, its checkpoint loaded) only where work is left."""
        return sum(evaluation_work(e, self.run) for e in self.remaining)


def plan(requests: Requests, run: RunContext = RunContext(), *, together: bool = False, source_first: bool = False,
         subjects: Iterable[Subject] = (), relocate: bool = True) -> Plan:
    """Place ``requests`` (``together``: all on one dataset, as a transfer matrix's cells must be; ``source_first``:
    on the first dataset on disk, as a gallery shows its images), look them up, and list the work left.

    ``subjects``: the checkpoints that prerequisites may name (besides the requests' own). ``relocate=False``: on
    the datasets asked for, as the command line computes them."""
    lookup = replace(run, cached_only=True)
    placed, unreachable = locate(requests, lookup, together, source_first) if relocate else (requests, {})
    found = {k: v for k, r in placed.items() if (v := r.run(lookup)) is not MISSING}
    known = {s.sha256: s for s in [*subjects, *placed.values()]}
    remaining = work([r for k, r in placed.items() if k not in found], lookup, known)
    return Plan(placed, found, remaining, unreachable, lookup)


def work(missing: list[Evaluation], lookup: RunContext, known: dict[str, Subject]) -> list[Evaluation]:
    """``missing`` with what each requires and is not cached put before it, each evaluation once."""
    ordered: dict[str, Evaluation] = {}
    for request in missing:
        for needed in prerequisites(request, known):
            if needed.run(lookup) is MISSING:
                ordered |= {identity(e): e for e in work([needed], lookup, known)}
        ordered[identity(request)] = request
    return list(ordered.values())


def prerequisites(request: Evaluation, known: dict[str, Subject]) -> list[Evaluation]:
    """The evaluations that ``request``'s experiment declares it needs, on the checkpoints they name."""
    needs = get_experiment(request.experiment).requires(request.config)
    unknown = [n for n in needs if n.sha256 not in known]
    if unknown:
        raise ParameterError(f"{request.experiment} on {request.name} needs {unknown[0].experiment} of checkpoint "
                             f"{unknown[0].sha256[:12]}, which is not among the models given")
    return [Evaluation.of(known[n.sha256], get_experiment(n.experiment), n.config) for n in needs]


def identity(request: Evaluation) -> str:
    return get_experiment(request.experiment).key(request, request.config)


def locate(requests: Requests, lookup: RunContext, together: bool,
           source_first: bool) -> tuple[Requests, dict[str, int]]:
    """Each model's requests (``together``: all of them) on one dataset; what has none is left out and counted."""
    groups: dict[Hashable, Requests] = {}
    for key, request in requests.items():
        groups.setdefault("all" if together else request.sha256, {})[key] = request
    on_disk, placed, unreachable = available_datasets(), {}, {}
    for group in groups.values():
        kept = place(group, on_disk, source_first, lookup)
        placed |= kept
        if len(kept) < len(group):
            trained_on = next(iter(group.values())).dataset
            unreachable[trained_on] = unreachable.get(trained_on, 0) + len(group) - len(kept)
    return {k: placed[k] for k in requests if k in placed}, unreachable


def place(group: Requests, on_disk: list[str], source_first: bool, lookup: RunContext) -> Requests:
    """One model's (or one matrix's) requests on the dataset they are read on; see the module's docstring."""
    first = next(iter(group.values()))
    data = data_of(first.config)
    if data is None:
        return group
    options = [(d, {k: on(r, d) for k, r in group.items()}) for d in evaluation_datasets(first.dataset, data.dataset)]
    computable = [o for d, o in options if present(d, on_disk)]
    if computable and (source_first or len(options) == 1):
        return computable[0]
    hits = [{k: r for k, r in o.items() if r.run(lookup) is not MISSING} for _, o in options]
    complete = [o for (_, o), h in zip(options, hits) if len(h) == len(o)]
    if complete or computable:
        return (complete or computable)[0]
    return max(hits, key=len)  # nowhere to compute: what is cached, on the dataset holding the most


def on(request: Evaluation, dataset: str) -> Evaluation:
    """``request`` evaluated on ``dataset`` instead."""
    return replace(request, config=on_dataset(request.config, dataset))


def present(name: str, on_disk: list[str] | None = None) -> bool:
    """Whether ``name`` loads on this machine now (a user's .npz file: whether the file is there; other
    ``kind:<id>`` names are assumed to, their loader saying otherwise)."""
    if ":" in name:
        return not name.startswith("npz:") or Path(name[4:]).expanduser().is_file()
    return name in (available_datasets() if on_disk is None else on_disk)
