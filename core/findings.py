"""The findings scoreboard: each claim of the paper (``shared/paper/NOTES.md``, findings 1-8, and the built-in
conflict demo) scored on the zoo's comparable pairs, from cached results only (nothing is computed here).

**One verdict rule for every row.** A row compares a normalized model (the *treated* one: BN) with its norm-free
counterpart (the *control*: no normalization, or Fixup) on one measure. Its effect is signed so that a positive
value is the paper's direction, and comes with a 95 % interval (:mod:`core.stats`):

* **holds**: the interval lies above 0;
* **reversed**: it lies below 0;
* **inconclusive**: it contains 0 (or cannot be estimated);
* **not measured**: a result it needs is not cached; the row says what to run.

A finding's own verdict sums its rows: *holds* where a row holds and none is reversed, *reversed* the other way
round, *mixed* where rows of both kinds exist, *inconclusive* where every measured row is, else *not measured*.

Each row also says whether the pair is *matched*: clean accuracies within :data:`MATCHED` of each other on the
same images. An unmatched pair is still scored (its row says so); where an epoch snapshot of the more accurate
model matches the other, that comparison is scored too.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, replace
from typing import Callable

import numpy as np

from core.attacks import format_eps, paper_spec
from core.cache import MISSING, ResultCache
from core.catalog import CatalogEntry, list_checkpoints, snapshots
from core.corruptions.evaluation import CorruptionConfig
from core.errors import ParameterError
from core.experiments import DEFAULT_PER_CLASS, EvalData, RunContext, data_of, get_experiment
from core.features.reliance import RelianceConfig, seed_spread
from core.records import Record
from core.robustness import LIGSConfig, RobustnessConfig, RobustnessResult
from core.stats import (Estimate, bootstrap_estimate, mcnemar_exact, outcomes, paired_difference, seed_interval,
                        unpaired_difference)
from core.transfer import TRANSFER_ATTACKS, TransferCellConfig
from core.zoo import LANDSCAPE_GROUP

SCOREBOARD_VERSION = 2  # part of the stored estimates' keys: bump when a statistic changes
ESTIMATE_PREFIX = "findings-estimate:"  # stored interval estimates (shipped in checkpoints/findings-estimates.json)
MATCHED = 0.01  # clean accuracies within 1 point: a matched pair
CONTROL_NORMS = ("none", "fixup")  # what the paper's "without BN" means here (Fixup: App. I)
VERDICTS = ("holds", "reversed", "inconclusive", "not measured")
VERDICT_RULE = ("Effects in points (LIGS: hundredths of its cosine similarity), signed so that positive is the "
                "paper's direction, with 95 % intervals: holds = "
                "the interval lies above 0; reversed = below 0; inconclusive = it contains 0; not measured = a result "
                "is missing. Intervals: paired bootstrap over images (McNemar's exact p where outcomes are 0/1), "
                "else an unpaired bootstrap of the counts (training probes, the conflict split); one training seed "
                "per model unless stated.")
FINDING_VERDICTS = ("holds", "reversed", "mixed", "inconclusive", "not measured")
TABLE1_ATTACKS = ("pgd_l2", "pgd_linf", "cw_l2")
CORRUPTION_FAMILIES = {"noise": ("gaussian_noise", "shot_noise", "impulse_noise"),  # NRFs corrupted (App. A)
                       "contrast and fog": ("contrast", "fog")}  # RFs corrupted


class FindingError(ParameterError):
    """A comparison that cannot be made: an unknown model, or results on different images."""


@dataclass(frozen=True)
class Pair:
    """A normalized model and its norm-free counterpart, same architecture and training data."""

    treated: CatalogEntry
    control: CatalogEntry

    @property
    def label(self) -> str:
        return f"{self.treated.label} vs {self.control.label}"

    @property
    def family(self) -> tuple:
        """What its seed replicas share: the same comparison trained again at another seed."""
        t, c = self.treated, self.control
        return t.source, t.dataset, t.arch, t.width, t.preset, t.norm, c.norm, c.width, c.preset


@dataclass(frozen=True)
class Row:
    """One scored comparison (see the module's verdict rule). ``effect``: value and interval, the paper's direction
    positive; ``p_value``: McNemar's exact test where outcomes are paired per image, else None."""

    finding: str
    pair: str
    measure: str
    verdict: str
    effect: Estimate | None = None
    p_value: float | None = None
    n: int | None = None
    seeds: int = 1
    matched: bool | None = None
    clean: tuple[float, float] | None = None
    note: str = ""
    command: str = ""

    def to_dict(self) -> dict:
        record = asdict(self)
        record["effect"] = None if self.effect is None else self.effect.to_dict()
        return record


def verdict_of(effect: Estimate) -> str:
    return {1: "holds", -1: "reversed", 0: "inconclusive"}[effect.excludes_zero()]


def summary_verdict(rows: list[Row]) -> str:
    """The finding's verdict from its rows' (module docstring)."""
    kinds = {r.verdict for r in rows}
    if {"holds", "reversed"} <= kinds:
        return "mixed"
    for verdict in ("holds", "reversed", "inconclusive"):
        if verdict in kinds:
            return verdict
    return "not measured"


@dataclass(frozen=True)
class Lookup:
    """Cached results, read and never computed; and the interval estimates made from them, stored under their
    inputs' content (each bootstrap is seeded: the same outcomes give the same interval), so a board shown again
    resamples nothing."""

    cache: ResultCache

    def __call__(self, entry: CatalogEntry, experiment: str, config) -> Record | None:
        """The cached result; None where it is missing or predates the per-image outcomes a row pairs on."""
        declared = get_experiment(experiment)
        found = declared(entry, config, RunContext(self.cache, cached_only=True))
        return None if found is MISSING or not declared.current(found) else found

    def estimate(self, statistic: Callable[..., Estimate], *samples) -> Estimate:
        """``statistic(*samples)``, read from the cache where these very samples were estimated before."""
        arrays = [np.asarray(x, dtype=float) for x in samples]
        content = hashlib.sha256(statistic.__name__.encode())
        for a in arrays:
            content.update(f"{a.shape}".encode() + a.tobytes())
        key = f"{ESTIMATE_PREFIX}{SCOREBOARD_VERSION}:{content.hexdigest()}"
        stored = self.cache.get(key)
        if stored is not MISSING:
            return Estimate(*stored)
        estimate = statistic(*arrays)
        self.cache.set(key, [estimate.value, estimate.low, estimate.high])
        return estimate


def missing_row(finding: str, pair: Pair, measure: str, command: str) -> Row:
    return Row(finding, pair.label, measure, "not measured", command=command)


def eval_command(entry: CatalogEntry, attack: str) -> str:
    return f"python -m core eval {entry.name} --attack {attack}"


def same_images(a: Record, b: Record, pair: Pair) -> None:
    """Refuse to compare results made on different images (one clear line)."""
    if (a.dataset, a.n, data_of(a.config)) != (b.dataset, b.n, data_of(b.config)):
        raise FindingError(f"{pair.label}: the results were computed on different images ({a.dataset}, n={a.n} "
                           f"vs {b.dataset}, n={b.n}); compute both on the same data to compare them")


def clean_pair(a: RobustnessResult, b: RobustnessResult) -> tuple[tuple[float, float], bool]:
    clean = (a.clean_accuracy, b.clean_accuracy)
    return clean, abs(clean[0] - clean[1]) <= MATCHED + 1e-9


# -- measures ---------------------------------------------------------------------------------------------------

def robustness_rows(finding: str, pair: Pair, attacks: tuple[str, ...], direction: int, lookup: Lookup) -> list[Row]:
    """Robust accuracy of treated minus control, paired per image (``direction``: the paper's sign)."""
    rows = []
    for attack in attacks:
        spec = paper_spec(attack)
        config = RobustnessConfig(spec, EvalData(per_class=DEFAULT_PER_CLASS))
        measure = f"{spec.entry.title} {format_eps(spec.eps, spec.entry.threat)} robust accuracy"
        a, b = lookup(pair.treated, "robustness", config), lookup(pair.control, "robustness", config)
        if a is None or b is None:
            missing = pair.treated if a is None else pair.control
            rows.append(missing_row(finding, pair, measure, eval_command(missing, attack)))
            continue
        same_images(a, b, pair)
        effect = lookup.estimate(paired_difference, a.robust_correct, b.robust_correct).scaled(direction)
        clean, matched = clean_pair(a, b)
        rows.append(Row(finding, pair.label, measure, verdict_of(effect), effect,
                        mcnemar_exact(a.robust_correct, b.robust_correct), a.n, 1, matched, clean))
    return rows


def ligs_rows(finding: str, pair: Pair, lookup: Lookup) -> list[Row]:
    """LIGS (Gaussian 0.01) of treated minus control, paired per image; the paper: BN lower."""
    config = LIGSConfig(data=EvalData(per_class=DEFAULT_PER_CLASS))
    a, b = lookup(pair.treated, "ligs", config), lookup(pair.control, "ligs", config)
    if a is None or b is None:
        missing = pair.treated if a is None else pair.control
        return [missing_row(finding, pair, "LIGS", f"python -m core ligs {missing.name}")]
    same_images(a, b, pair)
    effect = lookup.estimate(paired_difference, a.per_sample, b.per_sample).scaled(-1)
    clean = robustness_clean(pair, lookup)
    return [Row(finding, pair.label, "LIGS (Gaussian 0.01)", verdict_of(effect), effect, None, a.n, 1,
                None if clean is None else clean[1], None if clean is None else clean[0])]


def robustness_clean(pair: Pair, lookup: Lookup) -> tuple[tuple[float, float], bool] | None:
    config = RobustnessConfig(paper_spec("pgd_l2"), EvalData(per_class=DEFAULT_PER_CLASS))
    a, b = lookup(pair.treated, "robustness", config), lookup(pair.control, "robustness", config)
    return None if a is None or b is None else clean_pair(a, b)


def transfer_rows(finding: str, pair: Pair, targets: list[CatalogEntry], lookup: Lookup) -> list[Row]:
    """Attack success of the control's examples minus the treated model's, pooled over the black-box targets that
    hold both cells. Both sources' examples are of the same images, shown to the same target, so the outcomes pair
    image by image: the bootstrap resamples images (each with its outcome on every target) and McNemar's test
    counts the discordant (target, image) pairs."""
    rows = []
    for attack in TRANSFER_ATTACKS:
        spec = paper_spec(attack)
        pairs = [cells for target in targets if (cells := transfer_cells(pair, target, spec, lookup)) is not None]
        measure = f"{spec.entry.title} success on black-box targets"
        if not pairs:
            rows.append(missing_row(finding, pair, measure, f"python -m core transfer --sources {pair.treated.name} "
                                                            f"{pair.control.name} --targets ... --attack {attack}"))
            continue
        fooled_t, fooled_c, counted = (np.array([cells[k] for cells in pairs]) for k in range(3))  # [targets, images]
        effect = lookup.estimate(pooled_success_difference, fooled_c.sum(0), fooled_t.sum(0), counted.sum(0))
        rows.append(Row(finding, pair.label, measure, verdict_of(effect), effect,
                        mcnemar_exact(fooled_c[counted], fooled_t[counted]), int(counted.sum()), 1,
                        note=f"{len(pairs)} targets"))
    return rows


def transfer_cells(pair: Pair, target: CatalogEntry, spec, lookup: Lookup) -> tuple[np.ndarray, ...] | None:
    """On one target, per image: whether the treated and the control model's examples fool it, and whether the image
    counts (the target is right on it clean); None unless both cells are cached."""
    cells = [lookup(target, "transfer", TransferCellConfig(source.sha256, spec, EvalData(per_class=DEFAULT_PER_CLASS)))
             for source in (pair.treated, pair.control)]
    if any(c is None for c in cells):
        return None
    if cells[0].clean_correct != cells[1].clean_correct:
        raise FindingError(f"{pair.label} on {target.label}: the target's clean predictions differ between the two "
                           "cells (computed on other images, or other weights); compute both cells again to compare")
    counted = np.asarray(cells[0].clean_correct, dtype=bool)
    return tuple(counted & ~np.asarray(c.adv_correct, dtype=bool) for c in cells) + (counted,)


def _pooled_success_gap(fooled_a, fooled_b, counted, axis: int = -1):
    """Pooled success of a minus b: per image, the targets it fools and the targets it counts on, summed."""
    return (np.sum(fooled_a, axis) - np.sum(fooled_b, axis)) / np.sum(counted, axis)


def pooled_success_difference(fooled_a: np.ndarray, fooled_b: np.ndarray, counted: np.ndarray) -> Estimate:
    """:func:`_pooled_success_gap`, its interval resampling images (each with its outcomes on every target)."""
    return bootstrap_estimate((fooled_a, fooled_b, counted), _pooled_success_gap, paired=True)


def training_rows(finding: str, entry: CatalogEntry, lookup: Lookup) -> list[Row]:
    """The checkpoint's own probes (l2-PGD eps 0.25, 10 steps, 1,000 images): robust accuracy at the last epoch
    minus at a third of training, fixed in advance (a peak picked afterwards would favour the claim); unpaired,
    as the probes keep counts."""
    history = [h for h in entry.history if h.get("robust_accuracy") is not None]
    label = training_label(entry)
    if len(history) < 3 or not entry.probe_images:
        return [Row(finding, label, "probe robust accuracy", "not measured",
                    note="fewer than 3 probed epochs in its history, or no record of the images probed")]
    early, last, n = history[len(history) // 3 - 1], history[-1], entry.probe_images
    effect = lookup.estimate(unpaired_difference, outcomes(early["robust_accuracy"], n),
                             outcomes(last["robust_accuracy"], n))
    return [Row(finding, label, f"probe robust accuracy, epoch {early['epoch']} minus epoch {last['epoch']}",
                verdict_of(effect), effect, None, n, 1,
                note=f"clean {100 * early['test_accuracy']:.1f} -> {100 * last['test_accuracy']:.1f} %")]


def training_label(entry: CatalogEntry) -> str:
    return f"{entry.label} over training"


def corruption_rows(finding: str, pair: Pair, lookup: Lookup) -> list[Row]:
    """Accuracy lost to each family (clean minus corrupted, pooled over its corruptions and severities 1-5): the
    paper expects BN to lose more under noise and less under contrast and fog. Paired: both models see the same
    images (and the same corrupted versions of them), resampled together."""
    rows = []
    for family, names in CORRUPTION_FAMILIES.items():
        samples = [family_outcomes(entry, names, lookup) for entry in (pair.treated, pair.control)]
        measure = f"accuracy lost to {family}"
        if any(s is None for s in samples):
            missing = pair.treated if samples[0] is None else pair.control
            rows.append(missing_row(finding, pair, measure, f"python -m core corruptions {missing.name} "
                                                            f"--corruptions {' '.join(names)}"))
            continue
        (clean_t, corrupted_t), (clean_c, corrupted_c) = samples
        loss_gap = lookup.estimate(corruption_loss_gap, clean_t, corrupted_t, clean_c, corrupted_c)
        effect = loss_gap if family == "noise" else loss_gap.scaled(-1)
        rows.append(Row(finding, pair.label, measure, verdict_of(effect), effect, None, len(clean_t), 1))
    return rows


def _loss_gap(clean_t, corrupted_t, clean_c, corrupted_c, axis: int = -1):
    """(treated's clean - corrupted accuracy) - (control's), over images."""
    return (np.mean(clean_t, axis) - np.mean(corrupted_t, axis)) - (np.mean(clean_c, axis) - np.mean(corrupted_c, axis))


def corruption_loss_gap(*samples: np.ndarray) -> Estimate:
    return bootstrap_estimate(samples, _loss_gap, paired=True)


def family_outcomes(entry: CatalogEntry, names: tuple[str, ...],
                    lookup: Lookup) -> tuple[np.ndarray, np.ndarray] | None:
    """Per image: right when clean, and the share of the family's cells (corruption x severity) it stays right in."""
    cells = [lookup(entry, "corruption", CorruptionConfig(name, severity, EvalData(per_class=DEFAULT_PER_CLASS)))
             for name in names for severity in range(1, 6)]
    if any(c is None for c in cells):
        return None
    clean = np.asarray(cells[0].clean_correct, dtype=float)
    return clean, np.mean([c.correct for c in cells], axis=0, dtype=float)


def demo_rows(finding: str, pair: Pair, lookup: Lookup) -> list[Row]:
    """The built-in conflict split: the share labelled by the non-robust cue, BN minus norm-free (the paper: BN
    higher); the shipped model pair, then the spread over training seeds and CPU kernel paths."""
    config = RelianceConfig()
    a, b = lookup(pair.treated, "conflict_reliance", config), lookup(pair.control, "conflict_reliance", config)
    rows = []
    if a is None or b is None:
        rows.append(missing_row(finding, pair, "share following the non-robust cue",
                                f"python -m core run conflict_reliance {pair.treated.name}"))
    else:
        effect = lookup.estimate(unpaired_difference, outcomes(a.non_robust, a.n), outcomes(b.non_robust, b.n))
        rows.append(Row(finding, pair.label, "share following the non-robust cue", verdict_of(effect), effect, None,
                        a.n, 1))
    spread = seed_spread()
    if spread is not None:
        effect = seed_interval(spread.margins)
        rows.append(Row(finding, "tiny preset VGG11, BN vs none, retrained", "margin on the non-robust cue",
                        verdict_of(effect), effect, None, None, len({r["seed"] for r in spread.runs}),
                        note=f"{len(spread.runs)} runs (seeds x CPU kernel paths), t-interval over runs"))
    return rows


# -- the findings -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Finding:
    key: str
    number: str  # NOTES.md's numbering; "demo" for the built-in conflict demo
    claim: str
    source: str  # where the paper shows it
    page: str  # the dashboard page with the evidence (its url path)
    rows: Callable[["Context"], list[Row]] = field(repr=False)


@dataclass(frozen=True)
class Context:
    pairs: list[Pair]
    entries: list[CatalogEntry]
    lookup: Lookup
    named: bool = False  # a pair the user named is scored whatever its data

    def pairs_on(self, dataset_kind: str) -> list[Pair]:
        return self.pairs if self.named else [p for p in self.pairs
                                              if (p.treated.dataset == "builtin") == (dataset_kind == "builtin")]


# Findings 1-8 are about natural images: scored on the pairs trained on CIFAR-10 (or its JPEG copy); the built-in
# synthetic set has a finding of its own (the demo).
def _pgd(ctx: Context) -> list[Row]:
    return [r for p in ctx.pairs_on("cifar") for r in robustness_rows("pgd", p, TABLE1_ATTACKS, -1, ctx.lookup)]


def _ligs(ctx: Context) -> list[Row]:
    return [r for p in ctx.pairs_on("cifar") for r in ligs_rows("ligs", p, ctx.lookup)]


def _fgsm(ctx: Context) -> list[Row]:
    return [r for p in ctx.pairs_on("cifar") for r in robustness_rows("fgsm", p, ("fgsm",), 1, ctx.lookup)]


def _transfer(ctx: Context) -> list[Row]:
    rows = []
    for p in ctx.pairs_on("cifar"):
        targets = [e for e in ctx.entries if e.dataset == p.treated.dataset and e not in (p.treated, p.control)
                   and e.group != LANDSCAPE_GROUP and not e.adversarial]
        rows += [r for r in transfer_rows("transfer", p, targets, ctx.lookup) if r.verdict != "not measured"]
    return rows or [Row("transfer", "no source pair", "success on black-box targets", "not measured",
                        command="python -m core transfer --sources BN_MODEL NONE_MODEL --targets ...")]


def _training(ctx: Context) -> list[Row]:
    return [r for p in ctx.pairs_on("cifar") for e in (p.treated, p.control)
            for r in training_rows("training", e, ctx.lookup)]


def _features(ctx: Context) -> list[Row]:
    return [Row("features", "models trained on D_R / D_NR / D_rand", "LIGS", "not measured",
                note="the feature-training results keep a mean LIGS probe, not per-image LIGS, so no interval",
                command="python -m core run ligs <each model in the features folder>")]


def _corruptions(ctx: Context) -> list[Row]:
    rows = [r for p in ctx.pairs_on("cifar") for r in corruption_rows("corruptions", p, ctx.lookup)]
    return [r for r in rows if r.verdict != "not measured"] or rows[:1]


def _landscape(ctx: Context) -> list[Row]:
    return [Row("landscape", "App. I landscape runs", "loss variation, gradient change, beta-smoothness",
                "not measured", note="the landscape bands are measured (Loss landscape page) but not yet scored: "
                                     "they have no sampling model for an interval here")]


def _demo(ctx: Context) -> list[Row]:
    pairs = [p for p in ctx.pairs_on("builtin") if p.treated.arch == "vgg11"]
    return [r for p in pairs[:1] for r in demo_rows("demo", p, ctx.lookup)]


FINDINGS: tuple[Finding, ...] = (
    Finding("pgd", "1", "BN lowers robust accuracy under PGD (l2, linf) and CW-loss PGD", "Table 1", "robustness",
            _pgd),
    Finding("ligs", "2", "BN lowers LIGS: the loss is less locally linear", "Sec. 4, Fig. 3", "ligs", _ligs),
    Finding("fgsm", "3", "BN raises robust accuracy under single-step FGSM", "Table A6", "robustness", _fgsm),
    Finding("transfer", "4", "Adversarial examples from models without BN transfer better", "Table 4, A8",
            "transfer", _transfer),
    Finding("training", "5", "Robust accuracy falls as training goes on (robust features first, non-robust later)",
            "Fig. 1, A2", "training", _training),
    Finding("features", "6", "Models trained on D_R have the highest LIGS, D_rand the lowest", "Fig. A4, 6",
            "features", _features),
    Finding("corruptions", "7", "BN models lose more under noise, less under contrast and fog", "Sec. 3.2, App. A",
            "corruptions", _corruptions),
    Finding("landscape", "8", "Only BN clearly smooths the optimization landscape", "App. I", "landscape", _landscape),
    Finding("demo", "demo", "Built-in conflict split: the BN model follows the non-robust cue, the norm-free one the "
                            "robust cue", "the project's offline demo", "features", _demo),
)


def finding(key: str) -> Finding:
    known = {f.key: f for f in FINDINGS}
    if key not in known:
        raise FindingError(f"unknown finding {key!r}; choose from {', '.join(known)}")
    return known[key]


# -- pairs and the scoreboard -----------------------------------------------------------------------------------

def comparable_pairs(entries: list[CatalogEntry]) -> list[Pair]:
    """The zoo's standard-trained BN models and their norm-free (or Fixup) counterparts: same dataset, architecture
    and training seed; App. I landscape runs and adversarially trained models left out."""
    kept = [e for e in entries if e.source == "zoo" and not e.adversarial and e.group != LANDSCAPE_GROUP]
    pairs = []
    for treated in (e for e in kept if e.norm == "bn"):
        controls = [e for e in kept if e.norm in CONTROL_NORMS
                    and (e.dataset, e.arch, e.seed) == (treated.dataset, treated.arch, treated.seed)]
        pairs += [Pair(treated, c) for c in controls]
    return pairs


def named_pair(treated: str, control: str, entries: list[CatalogEntry]) -> Pair:
    """The pair of two catalog names; one clear error for a name the catalog lacks."""
    by_name = {e.label: e for e in entries}
    for name in (treated, control):
        if name not in by_name:
            raise FindingError(f"no checkpoint named {name!r} in the catalog (python -m core list models lists "
                               "architectures; the Models page lists checkpoints)")
    return Pair(by_name[treated], by_name[control])


def matched_snapshot_pairs(pairs: list[Pair], lookup: Lookup) -> list[Pair]:
    """For each unmatched pair, the epoch snapshot of its more accurate model that matches the other model's clean
    accuracy (within :data:`MATCHED`), where one is evaluated."""
    found = []
    for pair in pairs:
        clean = robustness_clean(pair, lookup)
        if clean is None or clean[1]:
            continue
        (t, c) = clean[0]
        ahead, behind_accuracy = (pair.treated, c) if t > c else (pair.control, t)
        for snap in snapshots(ahead):
            candidate = replace(pair, treated=snap) if ahead is pair.treated else replace(pair, control=snap)
            snap_clean = robustness_clean(candidate, lookup)
            if snap_clean is not None and snap_clean[1]:
                found.append(candidate)
    return found


@dataclass(frozen=True)
class Replica:
    """What a row's subject (a pair, or one model's training) shares with its replicas at other training seeds."""

    family: tuple
    seed: int
    title: str  # the name of the row over its seeds


def replicas(pairs: list[Pair], entries: list[CatalogEntry]) -> dict[str, Replica]:
    """Each row subject's :class:`Replica`, by the label its rows carry."""
    found = {training_label(e): Replica((e.source, e.dataset, e.arch, e.width, e.preset, e.norm), e.seed,
                                        f"{e.arch} {e.norm} over training") for e in entries}
    return found | {p.label: Replica(p.family, p.treated.seed, f"{p.treated.arch} {p.treated.norm} vs "
                                                               f"{p.control.norm}") for p in pairs}


def with_seed_spread(rows: list[Row], subjects: dict[str, Replica]) -> list[Row]:
    """Rows of a subject trained at several seeds become its first seed's row and one row over the seeds: the mean
    effect with a t-interval over seeds, each seed's effect and verdict in its note (so a claim that holds on one
    seed and not another says so). Rows of other subjects are kept as they are."""
    groups: dict[tuple, list[Row]] = {}
    for i, row in enumerate(rows):
        subject = subjects.get(row.pair)
        groups.setdefault((row.measure, subject.family) if subject else (i,), []).append(row)
    kept = []
    for group in groups.values():
        measured = [r for r in group if r.effect is not None]
        if len(measured) < 2:
            kept += group
            continue
        measured.sort(key=lambda r: subjects[r.pair].seed)
        kept += [r for r in group if r.effect is None or r is measured[0]] + [seed_row(measured, subjects)]
    return kept


def seed_row(rows: list[Row], subjects: dict[str, Replica]) -> Row:
    """One comparison over its seeds (see :func:`with_seed_spread`)."""
    effect = seed_interval([r.effect.value for r in rows])
    each = ", ".join(f"seed {subjects[r.pair].seed}: {100 * r.effect.value:+.1f} ({r.verdict})" for r in rows)
    agree = len({r.verdict for r in rows}) == 1
    matched = None if any(r.matched is None for r in rows) else all(r.matched for r in rows)
    return Row(rows[0].finding, f"{subjects[rows[0].pair].title}, {len(rows)} seeds", rows[0].measure,
               verdict_of(effect), effect, None, rows[0].n, len(rows), matched,
               note=f"mean over seeds, t-interval; {each}" + ("" if agree else "; the seeds' verdicts differ"))


def score(findings: tuple[Finding, ...], pairs: list[Pair], entries: list[CatalogEntry], cache: ResultCache,
          named: bool = False) -> list[dict]:
    """Each finding with its rows and summary verdict, as plain data (the CLI's JSON, the Overview's table)."""
    lookup = Lookup(cache)
    ctx = Context(pairs + matched_snapshot_pairs(pairs, lookup), entries, lookup, named)
    board = []
    for f in findings:
        rows = with_seed_spread(f.rows(ctx), replicas(ctx.pairs, ctx.entries)) or [
            Row(f.key, "no comparable pair", "", "not measured",
                note="the catalog holds no BN / norm-free pair this finding is scored on")]
        board.append({"key": f.key, "number": f.number, "claim": f.claim, "source": f.source, "page": f.page,
                      "verdict": summary_verdict(rows), "rows": [r.to_dict() for r in rows]})
    return board


def scoreboard(cache: ResultCache | None = None, keys: tuple[str, ...] = (), pair: tuple[str, str] | None = None,
               entries: list[CatalogEntry] | None = None) -> list[dict]:
    """The scoreboard of ``keys`` (default: every finding) on the zoo's comparable pairs, or on one named ``pair``
    (treated, control), from ``cache``'s results."""
    entries = list_checkpoints() if entries is None else entries
    chosen = tuple(finding(k) for k in keys) or FINDINGS
    pairs = [named_pair(*pair, entries)] if pair else comparable_pairs(entries)
    return score(chosen, pairs, entries, cache or ResultCache(), named=pair is not None)


def effect_text(row: dict) -> str:
    """A row's effect as every view writes it: '+12.8 [+10.3, +15.8]' (points), or '' where it is not measured."""
    effect = row["effect"]
    if effect is None:
        return ""
    value, (low, high) = effect["value"], effect["ci"]
    return f"{100 * value:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]"


def row_note(row: dict, command: str = "run: {}") -> str:
    """A row's note, then what to run where it is not measured (``command``: how to write it)."""
    return "; ".join(x for x in (row["note"], row["command"] and command.format(row["command"])) if x)


def markdown_table(board: list[dict]) -> str:
    """The scoreboard as RESULTS.md shows it (scripts/findings_table.py writes it there; a test compares)."""
    lines = ["| # | claim (paper) | verdict | pair | measure | effect, points (95 % CI) | p | n | matched clean acc |",
             "|---|---|---|---|---|---|---|---|---|"]
    for f in board:
        lines.append(f"| {f['number']} | {f['claim']} ({f['source']}) | **{f['verdict']}** | | | | | | |")
        for r in f["rows"]:
            matched = {True: "yes", False: "no", None: ""}[r["matched"]]
            clean = matched if r["clean"] is None else \
                f"{matched}: {100 * r['clean'][0]:.1f} vs {100 * r['clean'][1]:.1f}"
            p = "" if r["p_value"] is None else f"{r['p_value']:.2g}"
            extra = row_note(r, "run `{}`")
            lines.append(f"| | | {r['verdict']} | {r['pair']} | {r['measure']}" + (f" ({extra})" if extra else "") +
                         f" | {effect_text(r)} | {p} | {r['n'] or ''} | {clean} |")
    return "\n".join(lines)
