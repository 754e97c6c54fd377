"""The Robustness page's gradient check and AutoAttack-style section, driven headless with AppTest on the tiny
built-in zoo (tests/conftest.py) with the helpers of tests/apptest.py."""
from __future__ import annotations

import pytest

from apptest import PAIR, assert_clean, open_page

from core.attacks import paper_spec
from core.cache import MISSING, ResultCache
from core.checkpoints import load_checkpoint
from core.experiments import EvalData, RunContext
from core.robustness import RobustnessConfig, robustness

pytestmark = pytest.mark.usefixtures("cache_dir")  # its own cache and the tiny zoo (conftest.py)


def table_with(at, column: str):
    return next(d.value for d in at.dataframe if column in d.value.columns)


def zero_gradient_table(at):
    """The page's gradient check beside Table 1 (FGSM only): one text column per attack."""
    return next(d.value for d in at.dataframe if list(d.value.columns) == ["model", "FGSM 4/255"])


def test_autoattack_section_shows_the_worst_case_and_the_zero_gradient_shares():
    at = open_page("robustness")
    at.multiselect(key="rob_models").set_value(PAIR)
    at.multiselect(key="rob_attacks").set_value(["fgsm"])
    at.number_input(key="rob_per_class").set_value(1)
    at.selectbox(key="aa_threat").set_value("l2")
    at.number_input(key="aa_steps").set_value(5).run()
    at.button(key="aa_run").click().run()
    assert_clean(at)
    table = table_with(at, "worst case")
    assert list(table["model"]) == PAIR and set(table["n"]) == {10}
    assert (table["worst case"] <= table[["APGD-CE-l2", "APGD-T-l2"]].min(axis=1)).all()
    assert all(v.endswith(" %") for v in table["APGD-T-l2 zero grad."])


def test_results_cached_before_the_gradient_check_show_not_measured(zoo):
    at = open_page("robustness")
    at.multiselect(key="rob_models").set_value(PAIR)
    at.multiselect(key="rob_attacks").set_value(["fgsm"])
    at.number_input(key="rob_per_class").set_value(1).run()
    at.button(key="rob_run").click().run()
    assert_clean(at)
    assert all(v.endswith(" %") for v in zero_gradient_table(at)["FGSM 4/255"])
    cache, config = ResultCache(), RobustnessConfig(paper_spec("fgsm"), EvalData("builtin", per_class=1))
    for name in PAIR:  # as the shipped results.json.xz entries, made before the field existed
        key = robustness.key(load_checkpoint(zoo / f"{name}.safetensors"), config)
        old = cache.get(key)
        old.pop("zero_gradient")
        cache.set(key, old)
    again = open_page("robustness")
    again.multiselect(key="rob_models").set_value(PAIR)
    again.multiselect(key="rob_attacks").set_value(["fgsm"])
    again.number_input(key="rob_per_class").set_value(1).run()
    assert_clean(again)
    assert set(zero_gradient_table(again)["FGSM 4/255"]) == {"not measured"}


def test_bf16_attack_settings_compute_and_cache_apart_from_fp32(zoo):
    at = open_page("robustness")
    at.multiselect(key="rob_models").set_value(PAIR)
    at.multiselect(key="rob_attacks").set_value(["pgd_l2"])
    at.number_input(key="rob_steps_pgd_l2").set_value(2)
    at.number_input(key="rob_per_class").set_value(1)
    assert at.radio(key="rob_precision").value == "fp32"
    at.radio(key="rob_precision").set_value("bf16").run()
    at.button(key="rob_run").click().run()
    assert_clean(at)
    assert table_with(at, "PGD-l2 0.25 (2)")["PGD-l2 0.25 (2)"].notna().all()
    data, cached = EvalData("builtin", per_class=1), RunContext(cached_only=True)
    for name in PAIR:
        checkpoint = load_checkpoint(zoo / f"{name}.safetensors")
        bf16, fp32 = (RobustnessConfig(paper_spec("pgd_l2", steps=2, precision=p), data) for p in ("bf16", "fp32"))
        assert robustness(checkpoint, bf16, cached) is not MISSING and robustness(checkpoint, fp32, cached) is MISSING
