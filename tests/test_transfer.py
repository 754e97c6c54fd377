"""core.transfer and the transfer attacks: each variant's defining property, the success-rate definition,
matrix shape and diagonal, cached == recomputed, one new column computes one column, incompatible models."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from core.attacks import IFGSM, build_attack, paper_spec
from core.cache import MISSING, ResultCache
from core.experiments import EvalData, RunContext, load_subject
from core.transfer import (TRANSFER_ATTACKS, TransferCellConfig, TransferCell, TransferConfig, transfer_cell,
                           transfer_examples, transfer_matrix, transferability_over_training)

DATA = EvalData("builtin", "test", 2)
EPS = 8 / 255


def ifgsm(model, **variant) -> torch.Tensor:
    return IFGSM(model, EPS, steps=5, **variant)


@pytest.mark.parametrize("variant", [dict(decay=0.0), dict(diversity_prob=0.0), dict(kernel_size=1)])
def test_each_variant_switched_off_is_plain_ifgsm(variant, trained_pair, eval_batch):
    model, (x, y) = trained_pair["bn"].model, eval_batch
    assert torch.allclose(ifgsm(model, **variant)(x, y), ifgsm(model)(x, y), atol=1e-6)


@pytest.mark.parametrize("variant", [dict(decay=1.0), dict(diversity_prob=1.0), dict(kernel_size=5)])
def test_each_variant_switched_on_changes_the_examples(variant, trained_pair, eval_batch):
    model, (x, y) = trained_pair["bn"].model, eval_batch
    assert not torch.allclose(ifgsm(model, **variant)(x, y), ifgsm(model)(x, y), atol=1e-6)


@pytest.mark.parametrize("name", TRANSFER_ATTACKS)
def test_transfer_attacks_stay_in_the_linf_ball_and_are_seeded(name, trained_pair, eval_batch):
    model, (x, y) = trained_pair["none"].model, eval_batch
    spec = paper_spec(name, seed=3)
    adv = build_attack(model, spec)(x, y)
    assert (adv - x).abs().max() <= spec.eps + 1e-6 and adv.min() >= 0 and adv.max() <= 1
    assert torch.equal(adv, build_attack(model, spec)(x, y))


def test_success_rate_counts_only_images_the_target_gets_right_when_clean():
    y = torch.tensor([0, 1, 2, 3])
    clean = torch.tensor([0, 1, 0, 3])  # image 2 is already wrong: not counted
    adv = torch.tensor([1, 1, 0, 0])  # fooled: 0 and 3 (of the counted), and 2 (error only)
    cell = TransferCell.of("source", y, clean, adv)
    assert (cell.n, cell.success_rate, cell.error_rate, cell.clean_accuracy) == (3, pytest.approx(2 / 3), 0.75, 0.75)
    assert cell.clean_correct == [True, True, False, True] and cell.adv_correct == [False, True, False, False]
    assert TransferCell.of("source", y, torch.tensor([1, 0, 0, 0]), adv).success_rate is None  # no image to count


def test_stored_examples_keep_the_budget_after_8_bit_rounding(trained_pair, tmp_path):
    examples = transfer_examples(trained_pair["none"], TransferConfig(data=DATA), RunContext(ResultCache(tmp_path)))
    assert examples.linf <= EPS + 1e-6 and len(examples.labels) == 20


def test_matrix_shape_diagonal_and_cached_equals_recomputed(trained_pair, tmp_path):
    models = [trained_pair["none"], trained_pair["bn"]]
    matrix = transfer_matrix(models, models, paper_spec("ifgsm"), DATA, RunContext(ResultCache(tmp_path)))
    assert len(matrix.table()) == 2 and len(matrix.table()[0]) == 2 and matrix.white_box == {(0, 0), (1, 1)}
    assert matrix.missing == 0 and all(0 <= v <= 1 for row in matrix.table() for v in row)
    assert matrix.value(1, 1) >= 0.9  # white-box I-FGSM at 8/255 fools the BN model, which follows a 6/255 cue
    again = transfer_matrix(models, models, paper_spec("ifgsm"), DATA, RunContext(ResultCache(tmp_path), cached_only=True))
    fresh = transfer_matrix(models, models, paper_spec("ifgsm"), DATA, RunContext(ResultCache(tmp_path / "fresh")))
    assert again.table() == matrix.table() == fresh.table()
    assert matrix.row_average(0) == pytest.approx(sum(matrix.table()[0]) / 2)
    assert matrix.row_average(0, black_box_only=True) == matrix.value(0, 1)


def test_a_new_target_costs_one_column(trained_pair, tmp_path):
    none, bn = trained_pair["none"], trained_pair["bn"]
    run = RunContext(ResultCache(tmp_path))
    transfer_matrix([none], [none], paper_spec("mifgsm"), DATA, run)
    loaded = []

    def load(subject):
        loaded.append(subject.name)
        return load_subject(subject)

    as_files = [listed(m) for m in (none, bn)]
    matrix = transfer_matrix(as_files[:1], as_files, paper_spec("mifgsm"), DATA, replace(run, load=load))
    assert loaded == [bn.name] and matrix.missing == 0  # neither the source's examples nor its own cell again


def listed(checkpoint):
    """The checkpoint as a listed file (sha256, dataset, path): what the dashboard passes, weights unloaded."""
    from core.catalog import entry_from_file

    return entry_from_file(checkpoint.path, "zoo")


def test_cached_only_matrix_reports_missing_cells(trained_pair, tmp_path):
    models = [trained_pair["none"], trained_pair["bn"]]
    matrix = transfer_matrix(models, models, paper_spec("tifgsm"), DATA, RunContext(ResultCache(tmp_path),
                                                                                  cached_only=True))
    assert matrix.missing == 4 and matrix.value(0, 1) is None and matrix.row_average(0) is None


def test_a_cell_without_its_sources_examples_says_so(trained_pair, tmp_path):
    bn = trained_pair["bn"]
    with pytest.raises(ValueError, match="not computed yet"):
        transfer_cell(bn, TransferCellConfig("0" * 64, data=DATA), RunContext(ResultCache(tmp_path)))


def test_models_of_different_datasets_cannot_share_a_matrix(trained_pair, tmp_path):
    other = replace(listed(trained_pair["bn"]), dataset="cifar10-jpeg")
    with pytest.raises(ValueError, match="different datasets"):
        transfer_matrix([trained_pair["none"]], [other], data=DATA, run=RunContext(ResultCache(tmp_path)))


def test_over_training_is_one_black_box_average_per_snapshot(trained_pair, tmp_path):
    none, bn = trained_pair["none"], trained_pair["bn"]
    run = RunContext(ResultCache(tmp_path))
    curve = transferability_over_training([none, bn], [bn], paper_spec("ifgsm"), DATA, run)
    matrix = transfer_matrix([none, bn], [bn], paper_spec("ifgsm"), DATA, replace(run, cached_only=True))
    assert curve == [matrix.value(0, 0), None]  # bn's own column is white-box, so its black-box average is empty
    assert transfer_cell(bn, TransferCellConfig(none.sha256, data=DATA), replace(run, cached_only=True)) is not MISSING
