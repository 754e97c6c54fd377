"""The findings scoreboard: its verdict rule on synthetic pairs with planted effects, the shipped results it reads,
and its command line."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.attacks import paper_spec
from core.cache import ResultCache
from core.catalog import CatalogEntry, shipped_seeds, zoo_results
from core.io import read_json
from core.experiments import DEFAULT_PER_CLASS, EvalData, get_experiment
from core.corruptions.evaluation import CorruptionCell, CorruptionConfig
from core.findings import (CORRUPTION_FAMILIES, FINDING_VERDICTS, FINDINGS, VERDICTS, FindingError, Lookup, Pair, Row,
                           comparable_pairs, corruption_rows, named_pair, robustness_rows, scoreboard,
                           summary_verdict, transfer_rows)
from core.robustness import RobustnessConfig, RobustnessResult
from core.transfer import TransferCell, TransferCellConfig

ROOT = Path(__file__).resolve().parents[1]
N = 1000


def entry(name: str, norm: str, sha: str) -> CatalogEntry:
    return CatalogEntry(name, f"{name}.safetensors", "zoo", "builtin", "vgg11", norm, 0.125, sha * 64)


def store_robustness(cache: ResultCache, model: CatalogEntry, robust: np.ndarray, clean: float = 0.9,
                     per_class: int = DEFAULT_PER_CLASS) -> None:
    """A robustness result of PGD-l2 as the experiment would cache it, with the given per-image outcomes."""
    spec = paper_spec("pgd_l2")
    experiment = get_experiment("robustness")
    config = experiment.resolved(model, RobustnessConfig(spec, EvalData(per_class=per_class)))
    cache.set(experiment.key(model, config), RobustnessResult(
        attack=spec.name, eps=spec.eps, steps=spec.steps, n=len(robust), clean_accuracy=clean,
        robust_accuracy=float(np.mean(robust)), zero_gradient=0.0,
        clean_correct=[bool(i < round(clean * len(robust))) for i in range(len(robust))],
        robust_correct=[bool(v) for v in robust], config=config, dataset=config.data.dataset).to_dict())


def planted(bn_rate: float, none_rate: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-image outcomes of two models with exactly these accuracies, right on independently placed images."""
    rng = np.random.default_rng(seed)
    return tuple(rng.permutation(N) < round(rate * N) for rate in (bn_rate, none_rate))


@pytest.fixture
def pair(tmp_path) -> tuple[Pair, ResultCache]:
    return Pair(entry("m-bn", "bn", "a"), entry("m-none", "none", "b")), ResultCache(tmp_path / "cache")


@pytest.mark.parametrize("bn, none, verdict", [
    (0.20, 0.60, "holds"),  # BN far less robust: the paper's direction
    (0.60, 0.20, "reversed"),
    (0.400, 0.405, "inconclusive"),  # 0.5 points apart, each right on other images: far inside the noise
])
def test_a_planted_difference_gets_its_verdict(pair, bn, none, verdict):
    p, cache = pair
    a, b = planted(bn, none)
    store_robustness(cache, p.treated, a)
    store_robustness(cache, p.control, b)
    (row,) = robustness_rows("pgd", p, ("pgd_l2",), -1, Lookup(cache))
    assert row.verdict == verdict and row.n == N and row.matched
    assert row.effect.value == pytest.approx(b.mean() - a.mean())  # signed: positive = BN lower, as the paper says


def test_a_missing_result_is_not_measured_and_says_what_to_run(pair):
    p, cache = pair
    store_robustness(cache, p.control, planted(0.2, 0.6)[1])
    (row,) = robustness_rows("pgd", p, ("pgd_l2",), -1, Lookup(cache))
    assert row.verdict == "not measured" and row.command == "python -m core eval m-bn --attack pgd_l2"


def test_a_result_cached_before_per_image_outcomes_is_not_measured(pair):
    """It is shown where it was (cached-only pages), but a comparison needs the outcomes: run it again."""
    p, cache = pair
    a, b = planted(0.2, 0.6)
    store_robustness(cache, p.treated, a)
    store_robustness(cache, p.control, b)
    key = get_experiment("robustness").key(p.treated, RobustnessConfig(paper_spec("pgd_l2")))
    cache.set(key, {k: v for k, v in cache.get(key).items() if k != "clean_correct"})
    (row,) = robustness_rows("pgd", p, ("pgd_l2",), -1, Lookup(cache))
    assert row.verdict == "not measured" and row.command == "python -m core eval m-bn --attack pgd_l2"


def store_transfer(cache: ResultCache, target: CatalogEntry, source: CatalogEntry, attack: str,
                   clean_correct: np.ndarray, adv_correct: np.ndarray) -> None:
    """A transfer cell as the experiment caches it: the target's per-image outcomes on the source's examples."""
    experiment = get_experiment("transfer")
    config = experiment.resolved(target, TransferCellConfig(source.sha256, paper_spec(attack),
                                                            EvalData(per_class=DEFAULT_PER_CLASS)))
    counted = clean_correct.sum()
    cache.set(experiment.key(target, config), TransferCell(
        source=source.sha256, n_images=N, n=int(counted),
        success_rate=float((clean_correct & ~adv_correct).sum() / counted), error_rate=float(1 - adv_correct.mean()),
        clean_accuracy=float(clean_correct.mean()), adv_pred=[], clean_correct=clean_correct.tolist(),
        adv_correct=adv_correct.tolist(), config=config, dataset=config.data.dataset).to_dict())


@pytest.mark.parametrize("bn_success, none_success, verdict", [(0.30, 0.60, "holds"), (0.60, 0.30, "reversed"),
                                                               (0.450, 0.455, "inconclusive")])
def test_transfer_success_pairs_image_by_image_over_the_targets(pair, bn_success, none_success, verdict):
    """Two targets, each right on 800 clean images; the BN source's examples fool ``bn_success`` of those, the
    norm-free source's ``none_success``: the effect is the pooled difference, McNemar counts the discordant
    (target, image) pairs, and an image the target gets wrong clean counts for neither source."""
    p, cache = pair
    targets = [entry(f"t{i}", "none", f"t{i}") for i in range(2)]
    rng = np.random.default_rng(1)
    for target in targets:
        clean = rng.permutation(N) < 800
        for source, success in ((p.treated, bn_success), (p.control, none_success)):
            fooled = np.zeros(N, bool)
            fooled[rng.permutation(np.flatnonzero(clean))[:round(success * 800)]] = True
            store_transfer(cache, target, source, "ifgsm", clean, clean & ~fooled)
    (row,) = [r for r in transfer_rows("transfer", p, targets, Lookup(cache)) if r.verdict != "not measured"]
    assert row.verdict == verdict and row.n == 1600 and row.note == "2 targets"
    assert row.effect.value == pytest.approx(round(none_success * 800) / 800 - round(bn_success * 800) / 800)
    assert (row.p_value < 1e-6) == (verdict != "inconclusive")


def test_transfer_cells_whose_target_saw_other_clean_images_are_refused_in_one_line(pair):
    p, cache = pair
    target = entry("t0", "none", "t0")
    clean = np.arange(N) < 800
    store_transfer(cache, target, p.treated, "ifgsm", clean, clean)
    store_transfer(cache, target, p.control, "ifgsm", np.roll(clean, 1), clean)
    with pytest.raises(FindingError, match="clean predictions differ between the two cells"):
        transfer_rows("transfer", p, [target], Lookup(cache))


def store_corruption(cache: ResultCache, model: CatalogEntry, name: str, severity: int, clean: np.ndarray,
                     correct: np.ndarray) -> None:
    experiment = get_experiment("corruption")
    config = experiment.resolved(model, CorruptionConfig(name, severity, EvalData(per_class=DEFAULT_PER_CLASS)))
    cache.set(experiment.key(model, config), CorruptionCell(
        corruption=name, severity=severity, n=N, accuracy=float(correct.mean()), clean_accuracy=float(clean.mean()),
        clean_correct=clean.tolist(), correct=correct.tolist(), config=config, dataset=config.data.dataset).to_dict())


def test_accuracy_lost_to_corruptions_pairs_image_by_image(pair):
    """Both models right on the same 900 clean images; under noise BN keeps 50 % of them and the norm-free model
    80 %; under contrast and fog both keep 70 %: noise holds (BN loses 30 points more), contrast is inconclusive."""
    p, cache = pair
    clean = np.arange(N) < 900
    rng = np.random.default_rng(2)
    for model, noise_kept in ((p.treated, 0.5), (p.control, 0.8)):
        for family, names in CORRUPTION_FAMILIES.items():
            kept = noise_kept if family == "noise" else 0.7
            for name in names:
                for severity in range(1, 6):
                    store_corruption(cache, model, name, severity, clean, clean & (rng.random(N) < kept))
    noise, contrast = corruption_rows("corruptions", p, Lookup(cache))
    assert noise.verdict == "holds" and noise.effect.value == pytest.approx(0.9 * 0.3, abs=0.02)
    assert contrast.verdict == "inconclusive" and noise.n == N


def test_results_on_different_images_are_refused_in_one_line(pair):
    p, cache = pair
    store_robustness(cache, p.treated, np.ones(N, bool))
    store_robustness(cache, p.control, np.ones(500, bool))
    with pytest.raises(FindingError, match="different images"):
        robustness_rows("pgd", p, ("pgd_l2",), -1, Lookup(cache))


def test_an_unmatched_pair_says_so(pair):
    p, cache = pair
    a, b = planted(0.2, 0.6)
    store_robustness(cache, p.treated, a, clean=0.90)
    store_robustness(cache, p.control, b, clean=0.85)
    (row,) = robustness_rows("pgd", p, ("pgd_l2",), -1, Lookup(cache))
    assert row.matched is False and row.clean == (0.90, 0.85)


@pytest.mark.parametrize("verdicts, summary", [
    (["holds", "inconclusive"], "holds"), (["reversed", "not measured"], "reversed"),
    (["holds", "reversed"], "mixed"), (["inconclusive"], "inconclusive"), (["not measured"], "not measured")])
def test_a_findings_verdict_sums_its_rows(verdicts, summary):
    assert summary_verdict([Row("f", "p", "m", v) for v in verdicts]) == summary


def test_pairs_are_the_zoos_standard_bn_models_and_their_norm_free_counterparts():
    models = [entry("x-bn", "bn", "a"), entry("x-none", "none", "b"), entry("x-gn", "gn", "c")]
    assert [(p.treated.name, p.control.name) for p in comparable_pairs(models)] == [("x-bn", "x-none")]
    with pytest.raises(FindingError, match="no checkpoint named 'nope'"):
        named_pair("x-bn", "nope", models)


@pytest.fixture(scope="module")
def shipped(tmp_path_factory) -> ResultCache:
    cache = ResultCache(tmp_path_factory.mktemp("shipped"))
    for shipped in shipped_seeds():
        cache.seed(shipped)
    return cache


def reaggregates(outcomes: list[bool], n: int, accuracy: float) -> bool:
    """The outcomes are ``n`` images, as many of them true as ``accuracy`` (a float32 share) counts, exactly."""
    return len(outcomes) == n and sum(outcomes) == round(accuracy * n)


def test_the_shipped_per_image_outcomes_reaggregate_to_the_shipped_accuracies():
    """Every shipped robustness result, transfer cell and corruption cell carries its per-image outcomes (and the
    robustness results their zero-gradient share), and they count up to its accuracies exactly."""
    results = read_json(zoo_results())
    by_kind = {kind: [r for k, r in results.items() if k.startswith(f"{kind}:")]
               for kind in ("robustness", "transfer", "corruption", "ligs")}
    assert all(by_kind.values())
    for r in by_kind["robustness"]:
        assert reaggregates(r["robust_correct"], r["n"], r["robust_accuracy"])
        assert reaggregates(r["clean_correct"], r["n"], r["clean_accuracy"]) and 0 <= r["zero_gradient"] <= 1
    for r in by_kind["transfer"]:
        counted = np.asarray(r["clean_correct"])
        assert counted.sum() == r["n"] and reaggregates(r["clean_correct"], r["n_images"], r["clean_accuracy"])
        assert np.sum(counted & ~np.asarray(r["adv_correct"])) / r["n"] == r["success_rate"]
        assert reaggregates([not c for c in r["adv_correct"]], r["n_images"], r["error_rate"])
    for r in by_kind["corruption"]:
        assert reaggregates(r["correct"], r["n"], r["accuracy"])
        assert reaggregates(r["clean_correct"], r["n"], r["clean_accuracy"])
    ligs = [r for k, r in results.items() if k.startswith("ligs:")]
    assert all(np.mean(r["per_sample"]) == pytest.approx(r["ligs"], abs=1e-6) for r in ligs)


def test_the_scoreboard_of_the_shipped_zoo_scores_every_finding(shipped):
    board = scoreboard(shipped, entries=None)
    assert [f["key"] for f in board] == [f.key for f in FINDINGS]
    by_key = {f["key"]: f for f in board}
    assert by_key["pgd"]["verdict"] in ("holds", "mixed")  # RESULTS.md: ResNet18 and ResNet20 hold by 8-13 points
    assert {f["verdict"] for f in board} <= set(FINDING_VERDICTS)
    assert {r["verdict"] for f in board for r in f["rows"]} <= set(VERDICTS)
    measured = [r for f in board for r in f["rows"] if r["verdict"] != "not measured"]
    assert len(measured) >= 30
    for r in measured:
        low, high = r["effect"]["ci"]
        assert low <= r["effect"]["value"] <= high
    assert scoreboard(shipped) == board  # the second time from stored estimates: the same board


def run_cli(*args: str, cache: Path) -> subprocess.CompletedProcess:
    env = {"NORMSCOPE_CACHE": str(cache), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "core", *args], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=600)


def test_the_command_line_scoreboard_and_its_errors(tmp_path):
    r = run_cli("findings", "--finding", "pgd", "fgsm", "--json", cache=tmp_path)
    out = json.loads(r.stdout)
    assert r.returncode == 0 and out["schema"] == "normscope.findings/1" and "holds = " in out["rule"]
    assert [f["key"] for f in out["findings"]] == ["pgd", "fgsm"]
    row = out["findings"][0]["rows"][0]
    assert {"pair", "measure", "verdict", "effect", "p_value", "n", "seeds", "matched", "clean", "command"} <= set(row)
    bad = run_cli("findings", "--pair", "cifar10jpeg-vgg11-bn", "no-such-model", cache=tmp_path)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no checkpoint named 'no-such-model'" in bad.stderr


def test_results_md_states_the_scoreboard():
    """RESULTS.md's verdict table is the scoreboard of the shipped results, as scripts/findings_table.py writes it."""
    check = subprocess.run([sys.executable, "scripts/findings_table.py", "--check"], capture_output=True, text=True,
                           cwd=ROOT, timeout=600)
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_cli_refuses_a_pair_on_different_images_in_one_line(tmp_path):
    r = run_cli("findings", "--pair", "builtin-vgg11-bn", "cifar10jpeg-vgg11-none", cache=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "different images" in r.stderr


def test_the_overview_scores_a_pair_the_user_picks_and_refuses_one_on_different_images(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from core.catalog import SHIPPED_ZOO

    monkeypatch.setenv("NORMSCOPE_ZOO", str(SHIPPED_ZOO))
    monkeypatch.setenv("NORMSCOPE_CACHE", str(tmp_path / "cache"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300).run()
    assert not at.exception and not at.error
    at.selectbox(key="own_treated").set_value("cifar10jpeg-vgg11-in")  # IN against the norm-free VGG11
    at.selectbox(key="own_control").set_value("cifar10jpeg-vgg11-none").run()
    assert not at.exception and not at.error
    own = next(d.value for d in at.dataframe if set(d.value.get("pair", [])) == {
        "cifar10jpeg-vgg11-in vs cifar10jpeg-vgg11-none"})
    assert "holds" in set(own["verdict"])  # RESULTS.md: IN's PGD-l2 15.5 vs 36.5 %
    at.selectbox(key="own_treated").set_value("builtin-vgg11-bn").run()
    assert not at.exception
    (error,) = at.error
    assert error.value.startswith("Cannot compare them:") and "different images" in error.value


def test_seed_replicas_pair_by_seed_and_are_scored_over_their_seeds():
    """Three seeds of one BN / norm-free comparison: each BN model pairs with the norm-free model of its own seed;
    the board keeps seed 0's row and adds one row over the seeds (t-interval), naming each seed's verdict."""
    from dataclasses import replace as with_
    from core.findings import replicas, with_seed_spread
    from core.stats import Estimate, seed_interval

    models = [with_(entry(f"m-{norm}-{seed}", norm, str(seed) + norm[0]), seed=seed)
              for seed in (0, 1, 2) for norm in ("bn", "none")]
    pairs = comparable_pairs(models)
    assert sorted((p.treated.seed, p.control.seed) for p in pairs) == [(0, 0), (1, 1), (2, 2)]
    effects = {0: Estimate(0.05, 0.02, 0.08), 1: Estimate(0.04, 0.01, 0.07), 2: Estimate(-0.01, -0.04, 0.02)}
    rows = [Row("pgd", p.label, "PGD robust accuracy", "holds" if effects[p.treated.seed].low > 0 else "inconclusive",
                effects[p.treated.seed], 0.01, 1000, 1, True) for p in pairs]
    first, spread = with_seed_spread(rows, replicas(pairs, models))
    assert first.pair == pairs[0].label and first.seeds == 1
    assert spread.seeds == 3 and spread.pair == "vgg11 bn vs none, 3 seeds"
    assert spread.effect == seed_interval([0.05, 0.04, -0.01]) and spread.verdict == "inconclusive"
    assert "seed 2: -1.0 (inconclusive)" in spread.note and "the seeds' verdicts differ" in spread.note
    lone = [r for r in rows if r.pair == pairs[0].label]
    assert with_seed_spread(lone, replicas(pairs, models)) == lone  # one seed: nothing to spread
