"""core.config: settings build configs as their dataclasses would, and a field's comment is its help."""
from __future__ import annotations

from dataclasses import replace

import pytest

from core.config import chosen, config_dict, config_from_dict, configure, field_notes, settings_of
from core.errors import ParameterError
from core.experiments import EvalData
from core.frequency import SpectrumConfig
from core.gallery import GalleryConfig
from core.robustness import LIGSConfig, RobustnessConfig
from core.surface import LossSurfaceConfig
from core.transfer import TransferConfig


def test_an_unset_field_takes_its_declared_default_so_a_derived_default_follows_the_settings():
    """A loss surface's radius defaults from its threat model: setting only the threat gives that threat's radius."""
    assert configure(LossSurfaceConfig, {"threat": "linf"}).radius == pytest.approx(8 / 255)
    assert configure(LossSurfaceConfig, {"threat": "linf"}) == LossSurfaceConfig(threat="linf")
    assert configure(LossSurfaceConfig, {}) == LossSurfaceConfig()


def test_dotted_settings_change_nested_fields_and_keep_the_nested_default():
    config = configure(LossSurfaceConfig, {"ligs.size": 0.02, "data.dataset": "builtin"})
    assert config.ligs.size == 0.02 and config.ligs.kind == "gaussian"
    assert config.data == EvalData("builtin", "test", 1)  # the field's own default keeps per_class=1


def test_a_base_config_is_changed_only_where_set():
    base = LIGSConfig(data=EvalData(per_class=7))
    assert configure(LIGSConfig, {"ligs.seed": 3}, base) == replace(base, ligs=replace(base.ligs, seed=3))


@pytest.mark.parametrize("settings, message", [({"attack.eps": 0.1}, "no default for source"),
                                               ({"colour": 1}, "no field 'colour'")])
def test_incomplete_or_unknown_settings_are_refused(settings, message):
    from core.transfer import TransferCellConfig

    with pytest.raises(ParameterError, match=message):
        configure(TransferCellConfig, settings)


@pytest.mark.parametrize("name", ["fgsm", "cw_l2", "mifgsm", "apgd_t_linf"])
def test_a_config_naming_only_an_attack_gets_that_attacks_paper_settings(name):
    """``run robustness CKPT --set attack.name=fgsm``: FGSM's budget and single step, not another attack's."""
    from core.attacks import ATTACKS, AttackSpec, paper_spec

    config = configure(RobustnessConfig, {"attack.name": name})
    assert config.attack == paper_spec(name) == AttackSpec(name)
    assert config.attack.eps == ATTACKS[name].kwargs["eps"]
    assert configure(RobustnessConfig, {"attack.name": name, "attack.steps": 3}).attack.steps == 3


@pytest.mark.parametrize("config_type", [RobustnessConfig, SpectrumConfig, GalleryConfig, TransferConfig])
def test_every_attack_field_named_anew_takes_that_attacks_paper_settings(config_type):
    """Whatever attack a config's default holds (PGD-l2, PGD-linf, I-FGSM), naming another gives that one's."""
    from core.attacks import ATTACKS, paper_spec

    for name in ATTACKS:
        assert configure(config_type, {"attack.name": name}).attack == paper_spec(name), name
        assert configure(config_type, {"attack.name": name}, config_type()).attack == paper_spec(name), name


def test_a_derived_value_follows_a_base_and_a_chosen_one_stays():
    """A base's value derived from its other fields is derived anew; one chosen apart from them is kept."""
    from core.attacks import paper_spec

    assert chosen(paper_spec("pgd_l2")).keys().isdisjoint({"eps", "steps"})
    assert configure(RobustnessConfig, {"attack.name": "fgsm"}, RobustnessConfig()).attack == paper_spec("fgsm")
    wide = RobustnessConfig(paper_spec("pgd_linf", eps=2 / 255))
    assert configure(RobustnessConfig, {"attack.name": "cw_linf"}, wide).attack == paper_spec("cw_linf", eps=2 / 255)
    surface = LossSurfaceConfig(threat="linf")
    assert configure(LossSurfaceConfig, {"threat": "l2"}, surface).radius == 1.0
    assert configure(LossSurfaceConfig, {"threat": "l2"}, replace(surface, radius=0.1)).radius == 0.1


def test_a_nested_defaults_derived_values_are_offered_as_derived():
    """The flags and the page's form offer an attack's budget as "derived" (None), so that a new name sets it."""
    found = {s.path: s for s in settings_of(RobustnessConfig)}
    assert found["attack.name"].default == "pgd_l2" and found["attack.eps"].default is None
    assert found["attack.steps"].default is None and found["attack.target"].default == "untargeted"


def test_a_config_survives_its_dict():
    config = configure(LossSurfaceConfig, {"threat": "linf", "ligs.kind": "pgd"})
    assert config_from_dict(LossSurfaceConfig, config_dict(config)) == config


def test_field_notes_are_the_fields_comments():
    notes = field_notes(LossSurfaceConfig)
    assert notes["resolution"] == "points per axis, odd" and "ligs" not in notes  # a field without a comment
    assert field_notes(EvalData)["dataset"] == "auto: the checkpoint's own dataset"


def test_settings_of_a_config_are_what_configure_sets():
    """Each setting's path, set to its default, gives the default config; nested defaults are the holder's."""
    found = {s.path: s for s in settings_of(LossSurfaceConfig)}
    assert {"image", "radius", "ligs.kind", "ligs.seed", "data.per_class"} <= set(found)
    assert found["data.per_class"].default == 1 and found["radius"].default is None  # declared, not resolved
    assert found["ligs.size"].note.startswith("the std") and found["seed"].name == "seed"
    assert configure(LossSurfaceConfig, {p: s.default for p, s in found.items()}) == LossSurfaceConfig()


def test_a_settings_scalar_type_unwraps_none_and_is_none_for_other_fields():
    from core.train import TrainConfig

    found = {s.path: s for s in settings_of(TrainConfig)}
    assert found["train_subset"].scalar is int and found["train_subset"].optional
    assert found["augment"].scalar is bool and found["lr"].scalar is float and found["arch"].scalar is str
    assert found["milestones"].scalar is None and not found["lr"].optional
    assert "adversarial" in found and found["adversarial"].scalar is None  # AttackSpec | None: not a value to type


def test_a_fields_declared_choices_reach_its_setting_the_flag_and_keep_the_key():
    """``one_of`` only declares what a field takes: the config, its dict and so its cache key are as before."""
    from core.attacks import ATTACKS, paper_spec
    from core.cli import parser
    from core.robustness import RobustnessConfig

    found = {s.path: s for s in settings_of(RobustnessConfig)}
    assert found["attack.name"].choices == tuple(ATTACKS) and found["attack.name"].default == "pgd_l2"
    assert found["attack.precision"].choices == ("fp32", "bf16") and found["attack.seed"].choices == ()
    assert config_dict(paper_spec("pgd_l2")) == {"__type__": "AttackSpec", "name": "pgd_l2", "eps": 0.25, "steps": 20,
                                                 "step_size": None, "random_start": False, "target": "untargeted",
                                                 "seed": 0}  # precision left out at fp32, as keyed before
    with pytest.raises(SystemExit):
        parser().parse_args(["landscape", "m", "--plane", "sideways"])  # argparse names the choices
