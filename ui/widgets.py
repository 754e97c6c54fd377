"""Widgets that return plain parameters (specs, lists, numbers); they never compute."""
from __future__ import annotations

import math
import re
from typing import Any

import streamlit as st

from core.attacks import ATTACKS, PRECISIONS, AttackSpec, format_eps, paper_spec
from core.errors import ParameterError
from core.speed import speed_note
from core.catalog import CatalogEntry
from core.config import Setting, settings_of
from core.experiments import DEFAULT_PER_CLASS
from core.findings import comparable_pairs
from core.metrics import LIGS_KINDS, LIGSSpec
from core.robustness import TABLE_ATTACKS
from core.zoo import LANDSCAPE_GROUP
from ui import catalog, datasource, state


def default_models(entries: list[CatalogEntry], limit: int) -> list[str]:
    """Up to ``limit`` models, the paper's comparisons first: the zoo's BN / norm-free pairs (core.findings; their
    seed replicas after every first seed), then other standard-trained BN and norm-free models, adversarially trained
    ones, and the App. I landscape runs (a few hundred steps long) last of the zoo's."""
    paired = sorted(dict.fromkeys(e for p in comparable_pairs(entries) for e in (p.treated, p.control)),
                    key=lambda e: e.seed)
    ranked = sorted((e for e in entries if e not in paired),
                    key=lambda e: (e.source != "zoo", e.group == LANDSCAPE_GROUP, e.norm not in ("bn", "none"),
                                   e.adversarial, e.arch, e.norm))
    return [e.label for e in (paired + ranked)[:limit]]


def model_picker(key: str, dataset: str, limit: int = 6, label: str = "Models", most: int | None = None,
                 preferred: tuple[str, ...] = ()) -> list[CatalogEntry]:
    """A multiselect over every checkpoint in the catalog, each labelled with the dataset it was trained on and
    grouped by it (the data source ``dataset``'s models first): a model whose dataset is not on disk still shows its
    precomputed results. At most ``most`` (said in the UI); preselected: the ``preferred`` ones present, else the
    paper's BN / norm-free comparison among the featured dataset's models (the zoo's, on a first start)."""
    entries = catalog.grouped(dataset)
    options = {e.label: e for e in entries}
    if not options:
        st.info("No checkpoints yet: upload one or train one on the Models page.")
        return []
    held_within(key, most)
    featured = state.featured()
    default = [p for p in preferred if p in options]
    default = default or default_models([e for e in entries if e.dataset == featured] or entries,
                                        min(limit, most or limit))
    picked = st.multiselect(label + (f" (up to {most})" if most else ""), list(options), max_selections=most,
                            default=default, key=key, format_func=lambda p: f"{p} · {options[p].dataset}",
                            help="Every model, labelled with the dataset it was trained on. Results come from that "
                                 "dataset, or from the data source (sidebar) where it holds the same images.")
    chosen = [options[p] for p in picked]
    if not chosen:
        st.info(f"Select at least one model under **{label}**.")
    datasource.note_missing(chosen)
    return chosen


def held_within(key: str, most: int | None) -> None:
    """A selection over ``most`` (a crafted message to the server, or a page that lowered its limit) is cut to its
    first ``most`` with one line saying so, where Streamlit would stop the page with an exception."""
    held = st.session_state.get(key)
    if most is not None and isinstance(held, list) and len(held) > most:
        st.session_state[key] = held[:most]
        st.error(f"At most {most} models can be selected here; {len(held)} were asked for, the first {most} are kept.")


def per_class_input(key: str, default: int = DEFAULT_PER_CLASS) -> int:
    return int(st.number_input("Test images per class", 1, 1000, default, step=10, key=key,
                               help="A balanced subset of the test split; results are cached per setting."))


def attack_spec_input(name: str, prefix: str, precision: str = "fp32") -> AttackSpec:
    """eps and steps of one attack, preset to the paper's defaults."""
    spec, entry = paper_spec(name), ATTACKS[name]
    c1, c2 = st.columns(2)
    eps = c1.number_input(f"{entry.title} eps ({entry.threat})", 0.0, 16.0, spec.eps, format="%.5f",
                          key=f"{prefix}_eps_{name}",
                          help=f"Default {format_eps(spec.eps, entry.threat)}: the paper's budget for its attacks, "
                               "AutoAttack's standard one for APGD")
    steps = int(c2.number_input(f"{entry.title} steps", 0, 1000, spec.steps, key=f"{prefix}_steps_{name}")) \
        if entry.iterative else spec.steps
    return paper_spec(name, eps=float(eps), steps=steps, precision=precision)


def attacks_input(prefix: str, defaults: tuple[str, ...] = TABLE_ATTACKS) -> list[AttackSpec]:
    """Which attacks, and each one's settings (paper defaults: 20 steps, step 2.5*eps/steps)."""
    names = st.multiselect("Attacks", list(ATTACKS), default=list(defaults), key=f"{prefix}_attacks",
                           format_func=lambda n: f"{ATTACKS[n].title}: {ATTACKS[n].description}")
    with st.expander("Attack settings (paper defaults)"):
        precision = st.radio("Precision", PRECISIONS, horizontal=True, key=f"{prefix}_precision",
                             help="bf16: the model's forward and backward under bf16 autocast, the perturbation in "
                                  "fp32 (within 0.2 points of fp32's accuracy on the zoo). Faster only where the "
                                  "hardware has native bf16: choosing it measures this machine once. Cached apart "
                                  "from fp32's results (the shipped ones are fp32)")
        if precision != "fp32":
            st.caption(speed_note(precision))
        return [attack_spec_input(n, prefix, precision) for n in names]


def ligs_input(prefix: str) -> LIGSSpec:
    """LIGS perturbation kind and size (paper: Gaussian, std 0.01; Fig. A1 variants)."""
    c1, c2 = st.columns(2)
    kind = c1.selectbox("Perturbation", LIGS_KINDS, key=f"{prefix}_kind",
                        help="gaussian: std = size; uniform: [-size, size]; fgsm/pgd: linf eps = size")
    size = c2.number_input("Size", 0.0001, 1.0, LIGSSpec.size, format="%.4f", key=f"{prefix}_size")
    return LIGSSpec(kind=kind, size=float(size))


def config_form(config_type: type, prefix: str, skip: tuple[str, ...] = (), columns: int = 3) -> dict[str, Any]:
    """A widget per settable field of ``config_type`` (:func:`core.config.settings_of`), preset to its default, its
    comment as help: the values given, by dotted path (a field left empty, such as a required one, is left out:
    :func:`core.config.configure` names what is missing). No field named ``dataset`` at any depth is offered: the
    data source (sidebar) picks the images, so no form field names a file (``npz:<path>``)."""
    fields = [s for s in settings_of(config_type)
              if s.scalar is not None and s.path not in skip and s.path.rsplit(".", 1)[-1] != "dataset"]
    cells = st.columns(columns)
    given = [(s, setting_input(s, cells[i % columns], f"{prefix}_{s.path}")) for i, s in enumerate(fields)]
    values = {s.path: typed_text(v, s) if isinstance(v, str) else v for s, v in given}  # read once all are drawn
    return {path: value for path, value in values.items() if value is not None}


def setting_input(setting: Setting, cell: Any, key: str) -> Any:
    """One field's widget: a checkbox, a choice among the field's own, a number, or a text (read by
    :func:`typed_text`)."""
    label, help = setting.path, setting.note or None
    if setting.scalar is bool:
        return cell.checkbox(label, bool(setting.default), key=key, help=help)
    if setting.choices:
        index = setting.choices.index(setting.default) if setting.default in setting.choices else None
        return cell.selectbox(label, setting.choices, index=index, key=key, help=help)
    if setting.scalar in (int, float) and setting.default is not None:
        value = cell.number_input(label, value=setting.default, key=key, help=help,
                                  **({"step": 1} if setting.scalar is int else {"format": "%g"}))
        return setting.scalar(value)
    derived = re.search(r"None: ([^)]+)", setting.note)  # what an empty field stands for, as its comment says
    return cell.text_input(label, "" if setting.default is None else str(setting.default), key=key, help=help,
                           placeholder=derived[1] if derived else None)


def typed_text(text: str, setting: Setting) -> Any:
    """A text field's value as its setting's type: None where empty; a ParameterError naming the field if unfit."""
    if not text.strip() or setting.scalar is str:
        return text.strip() or None
    if setting.scalar is int and not re.fullmatch(r"[+-]?\d{1,12}", text.strip()):
        raise ParameterError(f"{setting.path} takes a whole number, got {text.strip()!r}")
    return int(text) if setting.scalar is int else parse_number(text)


MAX_LIST = 25  # values one list field takes: each is a computation per model


def parse_number(item: str) -> float:
    """'0.25' or '2/255' as a finite float (no eval of the text); raises ValueError naming the item."""
    numerator, _, denominator = item.strip().partition("/")
    try:
        value = float(numerator) / float(denominator) if denominator else float(numerator)
    except (ValueError, ZeroDivisionError, OverflowError):
        value = math.nan
    if not math.isfinite(value):
        raise ParameterError(f"{item.strip()!r} is not a finite number (write e.g. 0.25 or 2/255)")
    return value


def parse_numbers(text: str) -> list[float]:
    """'0, 0.1; 2/255' (commas, semicolons or spaces between) -> [0.0, 0.1, 0.00784] in the order given; raises
    ValueError naming the bad item."""
    items = re.split(r"[,;\s]+", re.sub(r"\s*/\s*", "/", text.strip()))
    values = [parse_number(item) for item in items if item]
    if len(values) > MAX_LIST:
        raise ParameterError(f"give at most {MAX_LIST} values, got {len(values)}")
    return values


def parse_floats(text: str) -> list[float]:
    """A list of non-negative budgets ('0, 0.1, 0.25' -> [0.0, 0.1, 0.25]), sorted, each once."""
    values = parse_numbers(text)
    if not values or any(v < 0 for v in values):
        raise ParameterError("give one or more non-negative numbers, separated by commas")
    return sorted(set(values))
