"""Issue 41's attacks on paths, replayed: no config field, stored id or uploaded file makes a public server write
outside its cache or read a server file, and a refusal says the same whether the target exists or not; a public
server offers no experiment that trains; a crafted selection gets one line, not Streamlit's exception."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from apptest import PAIR, assert_clean, open_page, upload

from core.catalog import store_upload
from core.checkpoints import save_checkpoint
from core.config import configure
from core.errors import ParameterError
from core.experiments import EvalData, get_experiment, offered, registry
from core.features.config import PRESETS, FeatureConfig
from core.features.storage import dataset_folder, features_dir
from core.features.training import FeatureTrainingConfig
from core.io import UnsafePath, inside, safe_name
from core.train import TrainConfig

pytestmark = pytest.mark.usefixtures("cache_dir")  # its own cache and the tiny zoo (conftest.py)


@pytest.fixture
def public(monkeypatch, tmp_path):
    monkeypatch.setenv("NORMSCOPE_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("NORMSCOPE_PUBLIC", "1")
    monkeypatch.setenv("NORMSCOPE_DATA", str(tmp_path / "data"))


def refusal(make) -> str:
    with pytest.raises(ParameterError) as caught:
        make()
    return str(caught.value)


# 1. A preset that walks folders: FeatureConfig.preset became part of the extracted dataset's folder name.
@pytest.mark.parametrize("preset", ["../../../../../../tmp/x/ESCAPE", "/tmp/ESCAPE", "cpu/../../x", ""])
def test_a_feature_preset_is_one_of_the_presets_never_a_path(preset):
    assert "unknown feature preset" in refusal(lambda: FeatureConfig(preset=preset))
    assert "unknown feature preset" in refusal(lambda: configure(FeatureConfig, {"preset": preset}))


def test_the_any_experiment_page_offers_the_presets_as_a_choice():
    at = open_page("experiments")
    at.selectbox(key="any_experiment").set_value("feature_dataset").run()
    assert_clean(at)
    (preset,) = [w for w in at.selectbox if w.key == "any_feature_dataset_preset"]
    assert list(preset.options) == list(PRESETS)
    assert not [w for w in at.text_input if w.key.endswith("preset")]


@pytest.mark.parametrize("name", ["..", "../x", "a/b", ".hidden", "x\n", "", "a" * 201, "/abs", "a\\b"])
def test_a_stored_id_is_a_plain_name(name):
    with pytest.raises(UnsafePath):
        safe_name(name, "id")


@pytest.mark.parametrize("name", ["..", "../x", "a/../../x", "/abs"])
def test_a_feature_folder_stays_in_the_features_folder(name):
    with pytest.raises(UnsafePath):
        dataset_folder(name)


def test_a_folder_under_a_root_stays_under_it(tmp_path):
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "out").symlink_to(tmp_path)  # a link inside that points out is out
    assert inside(tmp_path / "root", "a", "b") == (tmp_path / "root" / "a" / "b").resolve()
    for parts in (("..", "x"), ("a", "..", "..", "x"), ("/etc",), ("out", "x")):
        with pytest.raises(UnsafePath):
            inside(tmp_path / "root", *parts)


def test_a_feature_dataset_id_that_walks_folders_is_refused_before_anything_is_read():
    escaped = features_dir().parent.parent / "ESCAPE"
    for name in ("features:../../ESCAPE", "features:../features/x", "features:/etc"):
        says = refusal(lambda: EvalData(dataset=name))
        assert "not a plain name" in says
    assert not escaped.exists()
    says = refusal(lambda: FeatureConfig(kind="D_conflict", start="../../ESCAPE"))
    assert "not a plain name" in says


# 2. Reading a server file as a dataset.
def test_a_public_server_reads_npz_only_under_its_data_folder_and_says_the_same_whatever_exists(public, tmp_path):
    secret = tmp_path / "secret.npz"
    secret.write_bytes(b"PK")
    says = {refusal(lambda: EvalData(dataset=f"npz:{path}")).replace(str(path), "P")
            for path in ("/etc/passwd", "/nowhere/x.npz", secret, tmp_path / "data" / ".." / "secret.npz")}
    assert len(says) == 1 and "not a dataset this server offers" in says.pop()
    EvalData(dataset=f"npz:{tmp_path / 'data' / 'mine.npz'}")  # the operator's data folder is offered
    with pytest.raises(UnsafePath):  # nested, as feature_training's features.data.dataset
        configure(FeatureTrainingConfig, {"features.data.dataset": "npz:/etc/passwd"})


def test_on_ones_own_machine_an_npz_path_is_any_path(tmp_path):
    assert EvalData(dataset=f"npz:{tmp_path / 'x.npz'}").dataset.endswith("x.npz")


def test_no_form_field_names_a_dataset(public):
    at = open_page("experiments")
    for name in sorted(offered(public=True)):
        at.selectbox(key="any_experiment").set_value(name).run()
        assert not at.exception, name  # a config that needs a field set says so in one line (transfer's source)
        fields = {w.key.removeprefix(f"any_{name}_") for kind in ("text_input", "selectbox", "number_input")
                  for w in at.get(kind) if w.key and w.key.startswith(f"any_{name}_")}
        assert not [f for f in fields if f.rsplit(".", 1)[-1] == "dataset"], name


def test_an_uploads_embedded_dataset_is_a_label_never_a_path(zoo, tmp_path, trained_pair):
    out = tmp_path / "crafted"
    save_checkpoint(trained_pair["bn"].model, out, {"dataset": "npz:/path/secret.npz"})
    entry = store_upload((tmp_path / "crafted.safetensors").read_bytes(), "crafted.safetensors")
    assert entry.dataset == "unknown"
    sidecar = json.loads(Path(entry.path).with_suffix(".json").read_text())
    assert sidecar["declared_dataset"] == "npz:/path/secret.npz" and sidecar["dataset"] == "unknown"
    named = tmp_path / "named"
    save_checkpoint(trained_pair["bn"].model, named, {"dataset": "builtin"})
    assert store_upload((tmp_path / "named.safetensors").read_bytes(), "named.safetensors").dataset == "builtin"


def test_a_public_gallery_on_an_upload_that_names_a_server_file_shows_the_visitors_data(public, tmp_path,
                                                                                      trained_pair):
    secret = tmp_path / "data" / "secret.npz"  # even one inside the data folder: a file's word is never a path
    save_checkpoint(trained_pair["bn"].model, tmp_path / "crafted", {"dataset": f"npz:{secret}"})
    at = upload(open_page("models"), "crafted.safetensors", (tmp_path / "crafted.safetensors").read_bytes())
    at.switch_page("views/gallery.py").run()
    (label,) = [o for o in at.multiselect(key="gal_models").options if o.startswith("crafted")]
    at.multiselect(key="gal_models").set_value([label])
    at.number_input(key="gal_per_class").set_value(1).run()
    at.button(key="gal_run").click().run()
    assert_clean(at)
    shown = " ".join(m.value for m in [*at.caption, *at.markdown, *at.info, *at.warning])
    assert "secret" not in shown and "npz:" not in shown and "Evaluated on: **builtin**" in shown


def test_a_stored_record_that_names_a_server_file_is_refused_on_a_public_server(public, tmp_path):
    """A record written before the fix: its dataset reaches an evaluation's config, which refuses it."""
    from core.experiments import data_for

    class OldUpload:
        sha256, path, name, dataset = "0" * 64, tmp_path / "old.safetensors", "old", f"npz:{tmp_path / 's.npz'}"

    assert "not a dataset this server offers" in refusal(lambda: data_for(OldUpload(), EvalData()))


# 3. Training on a public server.
def test_every_experiment_that_trains_says_so():
    """An experiment whose config holds a training config trains: it must declare ``trains`` (a public server
    offers none of them); the rule is read from the configs, so a new one cannot slip through."""
    def holds_training(config_type: type) -> bool:
        from dataclasses import fields, is_dataclass
        return any(f.type in ("TrainConfig", TrainConfig) or (is_dataclass(f.default) and holds_training(type(f.default)))
                   for f in fields(config_type))

    training = {name for name, e in registry().items() if holds_training(e.config_type)}
    assert training == {"feature_training"}
    assert {name for name, e in registry().items() if e.trains} == training
    assert training.isdisjoint(offered(public=True)) and training <= set(offered(public=False))


def test_a_public_server_lists_no_training_and_refuses_it_if_asked(public, caplog):
    at = open_page("experiments")
    options = at.selectbox(key="any_experiment").options
    assert not [o for o in options if o.startswith("feature_training")]
    assert any("train a model are off" in m.value for m in at.markdown)

    from core.experiments import Evaluation
    from core.planning import Plan
    from ui import compute

    feature_training = get_experiment("feature_training")
    evaluation = Evaluation("feature_training", FeatureTrainingConfig(), "x.safetensors", "0" * 64, "builtin")
    plan = Plan({"x": evaluation}, {}, [evaluation])
    with caplog.at_level(logging.INFO, logger="normscope.access"), pytest.raises(ParameterError, match="off here"):
        compute.refuse_unoffered(plan)
    (line,) = [json.loads(r.message) for r in caplog.records if r.name == "normscope.access"]
    assert line["action"] == "refused" and "feature_training" in line["reason"] and feature_training.trains


# 7. A crafted websocket message: more models than a picker allows.
def test_a_selection_over_the_limit_gets_one_line_and_the_page(public):
    at = open_page("gallery", gal_models=[*PAIR, *PAIR, PAIR[0]])  # 5 labels where 4 are allowed
    assert not at.exception, [e.value for e in at.exception]
    (error,) = at.error
    assert "At most 4 models" in error.value
    assert len(at.multiselect(key="gal_models").value) <= 4


def test_a_path_refusal_is_one_line_and_logged(public, caplog):
    """The one free-text field left that names something stored: D_conflict's start, a D_R dataset's id."""
    at = open_page("experiments")
    at.selectbox(key="any_experiment").set_value("feature_dataset").run()
    at.selectbox(key="any_feature_dataset_kind").set_value("D_conflict")
    with caplog.at_level(logging.INFO, logger="normscope.access"):
        at.text_input(key="any_feature_dataset_start").set_value("../../../../tmp/x").run()
    assert not at.exception
    (error,) = at.error
    assert "not a plain name" in error.value
    lines = [json.loads(r.message) for r in caplog.records if r.name == "normscope.access"]
    assert [line["action"] for line in lines] == ["path refused"] and "not a plain name" in lines[0]["reason"]
