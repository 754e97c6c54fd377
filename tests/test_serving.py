"""Public serving: the policy (environment and config file), the request size it limits, and the app under it,
driven headless with AppTest on the tiny built-in zoo (tests/conftest.py) with the helpers of tests/apptest.py.
The same in a real browser: tests/test_browser.py."""
from __future__ import annotations

import json
import logging
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest
from apptest import PAIR, assert_clean, open_page, upload

from core.attacks import paper_spec
from core.checkpoints import MAX_CHECKPOINT_BYTES, MB, too_large
from core.experiments import EvalData, Evaluation, get_experiment
from core.gallery import GalleryConfig
from core.metrics import LIGSSpec
from core.robustness import AutoAttackConfig, LIGSConfig, RobustnessConfig
from core.surface import LossSurfaceConfig
from core.planning import Plan
from core.serving import ServingError, ServingPolicy, serving_policy
from ui import serving

pytestmark = pytest.mark.usefixtures("cache_dir")  # its own cache and the tiny zoo (conftest.py)

ROOT = Path(__file__).resolve().parents[1]


def test_local_by_default_and_public_from_the_environment(tmp_path):
    nowhere = {"NORMSCOPE_CONFIG": str(tmp_path / "absent.toml")}
    assert serving_policy(nowhere) == ServingPolicy() and not ServingPolicy().public
    rules = serving_policy({**nowhere, "NORMSCOPE_PUBLIC": "1", "NORMSCOPE_MAX_WORK": "300",
                            "NORMSCOPE_PUBLIC_UPLOADS": "off"})
    assert rules.public and rules.max_work_per_request == 300 and not rules.uploads_allowed


def test_the_config_file_sets_it_and_the_environment_wins(tmp_path):
    path = tmp_path / "normscope.toml"
    path.write_text("[public]\nenabled = true\nmax_concurrent_computations = 3\nuploads = \"off\"\n")
    rules = serving_policy({"NORMSCOPE_CONFIG": str(path)})
    assert rules == ServingPolicy(enabled=True, uploads="off", max_concurrent_computations=3)
    assert serving_policy({"NORMSCOPE_CONFIG": str(path), "NORMSCOPE_PUBLIC": "0"}).public is False


@pytest.mark.parametrize("environ, says", [
    ({"NORMSCOPE_PUBLIC": "maybe"}, "NORMSCOPE_PUBLIC"),
    ({"NORMSCOPE_MAX_WORK": "lots"}, "NORMSCOPE_MAX_WORK"),
    ({"NORMSCOPE_MAX_WORK": "0"}, "at least 1"),
    ({"NORMSCOPE_MAX_IMAGES": "2000"}, "NORMSCOPE_MAX_IMAGES is replaced by NORMSCOPE_MAX_WORK"),
    ({"NORMSCOPE_PUBLIC_UPLOADS": "everyone"}, "uploads must be one of off, session"),
])
def test_a_bad_setting_is_named(tmp_path, environ, says):
    with pytest.raises(ServingError, match=says):
        serving_policy({"NORMSCOPE_CONFIG": str(tmp_path / "absent.toml"), **environ})


def test_a_bad_config_file_is_named(tmp_path):
    path = tmp_path / "normscope.toml"
    path.write_text("[public]\nenabeld = true\n")
    with pytest.raises(ServingError, match="unknown .public. setting.*enabeld"):
        serving_policy({"NORMSCOPE_CONFIG": str(path)})
    path.write_text("[public\n")
    with pytest.raises(ServingError, match="cannot read"):
        serving_policy({"NORMSCOPE_CONFIG": str(path)})


def test_a_plans_work_counts_every_evaluation_of_what_is_left():
    ligs = get_experiment("ligs")
    config = replace(ligs.config_type(), data=EvalData("builtin", per_class=3))
    evaluation = Evaluation("ligs", config, "a.safetensors", "0" * 64, "builtin")
    work = Plan(requests={}, found={}, remaining=[evaluation, replace(evaluation, path="b.safetensors")])
    assert work.work == 2 * 3 * 10 * 2  # two models x 3 per class x the built-in set's 10 classes x 2 gradients


def evaluation(name: str, config) -> Evaluation:
    return Evaluation(name, config, "a.safetensors", "0" * 64, "builtin")


TEN = EvalData("builtin", per_class=1)  # 10 images


@pytest.mark.parametrize("name, config, passes", [
    # each step, the clean and adversarial predictions, the zero-gradient check (tests/test_work.py counts them)
    ("robustness", RobustnessConfig(paper_spec("pgd_l2", steps=200), TEN), 203),
    ("robustness", RobustnessConfig(paper_spec("pgd_l2", steps=20), TEN), 23),
    ("robustness", RobustnessConfig(paper_spec("fgsm"), TEN), 4),
    ("robustness", RobustnessConfig(paper_spec("apgd_t_linf", steps=10), TEN), 9 * 11 + 1 + 3),  # 9 targets, starts
    ("autoattack", AutoAttackConfig(steps=10, data=TEN), (11 + 1 + 3) + (9 * 11 + 1 + 3)),  # APGD-CE, APGD-T
    ("gallery", GalleryConfig(paper_spec("pgd_linf", steps=1000), TEN), 1002),
    ("ligs", LIGSConfig(LIGSSpec(kind="pgd", steps=7), TEN), 2 + 7),
])
def test_work_is_images_times_passes(name, config, passes):
    assert Plan({}, {}, [evaluation(name, config)]).work == 10 * passes


def test_a_loss_surface_costs_a_pass_per_grid_point():
    config = LossSurfaceConfig(resolution=31, data=TEN)
    assert Plan({}, {}, [evaluation("loss_surface", config)]).work == 1 + 31 * 31 + 2


def test_slots_hold_at_most_their_size():
    slots = serving.Slots(2)
    assert slots.try_take() and slots.try_take() and not slots.try_take()
    slots.give_back()
    assert slots.try_take()


def test_session_uploads_are_deleted_once_their_session_has_been_gone_for_the_grace_period():
    uploads = serving.SessionUploads(grace=10)
    mine, theirs = uploads.root("t1", "mine"), uploads.root("t2", "theirs")
    assert uploads.root("t1", "mine") == mine and mine != theirs and uploads.existing("t3") is None
    alive = {"mine", "theirs"}
    assert uploads.sweep(alive.__contains__, now=0) == []
    alive.discard("mine")  # its tab closed
    assert uploads.sweep(alive.__contains__, now=100) == [] and mine.is_dir()  # within the grace period
    assert uploads.sweep(alive.__contains__, now=105) == [] and mine.is_dir()
    assert uploads.sweep(alive.__contains__, now=111) == ["mine"]
    assert not mine.exists() and theirs.is_dir() and uploads.existing("t1") is None


def test_a_session_back_within_the_grace_period_keeps_its_uploads():
    uploads = serving.SessionUploads(grace=10)
    mine = uploads.root("t1", "mine")
    uploads.sweep(lambda _: False, now=0)
    uploads.sweep(lambda _: True, now=5)  # reconnected
    assert uploads.sweep(lambda _: False, now=12) == [] and mine.is_dir()
    assert uploads.sweep(lambda _: False, now=23) == ["mine"]


@pytest.fixture
def public(monkeypatch, tmp_path):
    monkeypatch.setenv("NORMSCOPE_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("NORMSCOPE_PUBLIC", "1")


def widget_keys(at) -> set[str]:
    return {w.key for kind in ("button", "selectbox", "file_uploader", "number_input") for w in at.get(kind)}


def test_public_visitors_cannot_clear_train_or_queue_jobs(public):
    at = open_page("models")
    assert_clean(at)
    keys = widget_keys(at)
    assert "clear_cache" not in keys and "get_cifar10" not in keys
    assert not {"train_preset", "train_start", "job_pick"} & keys
    assert any("training is off here" in i.value for i in at.info)
    ligs = open_page("ligs")
    ligs.multiselect(key="ligs_models").set_value(PAIR)
    ligs.number_input(key="ligs_per_class").set_value(1).run()
    keys = widget_keys(ligs)
    assert "ligs_run" in keys and "ligs_run_bg" not in keys


def test_a_request_over_the_work_limit_is_refused_with_the_limit(public, monkeypatch, cache_dir, caplog):
    monkeypatch.setenv("NORMSCOPE_MAX_WORK", "39")
    at = open_page("ligs")
    at.multiselect(key="ligs_models").set_value(PAIR)
    at.number_input(key="ligs_per_class").set_value(1).run()
    with caplog.at_level(logging.INFO, logger="normscope.access"):
        at.button(key="ligs_run").click().run()
    assert not at.exception and not at.dataframe
    (error,) = at.error
    assert "40 image passes" in error.value and "limit of 39 per request" in error.value
    (line,) = [json.loads(r.message) for r in caplog.records if r.name == "normscope.access"]
    assert line["action"] == "refused" and line["work"] == 40


def test_a_request_within_the_limits_computes_and_is_logged(public, caplog):
    at = open_page("ligs")
    at.multiselect(key="ligs_models").set_value(PAIR)
    at.number_input(key="ligs_per_class").set_value(1).run()
    with caplog.at_level(logging.INFO, logger="normscope.access"):
        at.button(key="ligs_run").click().run()
    assert_clean(at)
    assert list(at.dataframe[0].value["model"]) == PAIR
    (line,) = [json.loads(r.message) for r in caplog.records if r.name == "normscope.access"]
    assert line["action"] == "compute" and line["work"] == 40 and len(line["session"]) == 10
    assert sorted(line["evaluations"]) == sorted(f"ligs:{name}" for name in PAIR)


def test_the_server_wide_computation_limit_asks_the_next_visitor_to_wait(public, monkeypatch):
    monkeypatch.setenv("NORMSCOPE_MAX_COMPUTATIONS", "1")
    busy = serving._slots(1)
    assert busy.try_take()  # another visitor's computation is running
    try:
        at = open_page("ligs")
        at.multiselect(key="ligs_models").set_value(PAIR)
        at.number_input(key="ligs_per_class").set_value(1).run()
        at.button(key="ligs_run").click().run()
    finally:
        busy.give_back()
    assert not at.dataframe and "try again in a minute" in at.error[0].value


def test_a_public_upload_is_private_to_its_session(public, zoo, cache_dir):
    good = (zoo / "builtin-vgg11-bn.safetensors").read_bytes()
    mine = upload(open_page("models"), "mine.safetensors", good)
    assert "of this session" in mine.success[0].value
    assert not (cache_dir / "uploads").exists()  # nothing in the shared folder
    mine.switch_page("views/robustness.py").run()
    assert any(o.startswith("mine (upload") for o in mine.multiselect(key="rob_models").options)
    theirs = open_page("robustness").multiselect(key="rob_models").options
    assert not any("(upload" in o for o in theirs)


def test_public_uploads_can_be_switched_off(public, monkeypatch):
    monkeypatch.setenv("NORMSCOPE_PUBLIC_UPLOADS", "off")
    at = open_page("models")
    assert "upload_file" not in widget_keys(at)
    assert any("uploading checkpoints is off here" in i.value for i in at.info)


def test_uploads_a_local_server_stored_stay_hidden_from_public_visitors(zoo, cache_dir, monkeypatch, tmp_path):
    good = (zoo / "builtin-vgg11-bn.safetensors").read_bytes()
    upload(open_page("models"), "local.safetensors", good)  # the operator's own upload, before going public
    monkeypatch.setenv("NORMSCOPE_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("NORMSCOPE_PUBLIC", "1")
    options = open_page("robustness").multiselect(key="rob_models").options
    assert not any("(upload" in o for o in options)


def test_a_bad_serving_setting_stops_the_app_with_one_message(monkeypatch, tmp_path):
    monkeypatch.setenv("NORMSCOPE_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("NORMSCOPE_PUBLIC", "perhaps")
    at = open_page("overview")
    assert not at.exception
    assert "serving settings cannot be used" in at.error[0].value and "NORMSCOPE_PUBLIC" in at.error[0].value


def test_the_upload_limit_is_one_number_in_the_server_the_widget_and_the_readme():
    limit = MAX_CHECKPOINT_BYTES // MB  # MB, as Streamlit's browser side reads it (tests/test_upload_limits.py)
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == limit and limit * MB == MAX_CHECKPOINT_BYTES
    assert config["client"]["toolbarMode"] == "viewer"  # read before the first session: no Deploy menu for anyone
    at = open_page("models")
    (uploader,) = at.get("file_uploader")
    assert uploader.proto.max_upload_size_mb == limit and f"at most {limit} MB" in uploader.proto.label
    assert f"limited to **{limit} MB**" in (ROOT / "README.md").read_text()
    assert f"({limit} MB)" in too_large(MAX_CHECKPOINT_BYTES + 1)


def test_the_upload_limit_is_the_servers_where_that_is_lower(monkeypatch):
    """A server started without the project's config (Streamlit's default 200 MB): the widget states that one."""
    monkeypatch.setattr(serving.st, "get_option", {"server.maxUploadSize": 200}.get)
    assert serving.upload_limit_mb() == 200


def test_a_gallery_of_many_attack_steps_is_refused_by_its_work(public, monkeypatch):
    """Issue 29's request: few images, 200 PGD steps; an image count let it hold a slot for minutes."""
    monkeypatch.setenv("NORMSCOPE_MAX_WORK", "3000")
    at = open_page("gallery")
    at.multiselect(key="gal_models").set_value(PAIR)
    at.selectbox(key="gal_attack").set_value("pgd_linf")
    at.number_input(key="gal_steps_pgd_linf").set_value(200).run()
    at.button(key="gal_run").click().run()
    assert not at.exception
    (error,) = at.error
    assert "4,040 image passes" in error.value and "limit of 3,000" in error.value  # 2 models x 10 images x 202


def test_an_upload_name_that_walks_folders_is_logged_as_the_name_stored(public, zoo, caplog):
    good = (zoo / "builtin-vgg11-bn.safetensors").read_bytes()
    with caplog.at_level(logging.INFO, logger="normscope.access"):
        at = upload(open_page("models"), "../../../../tmp/x\n{evil}.safetensors", good)
    assert "of this session" in at.success[0].value
    (line,) = [json.loads(r.message) for r in caplog.records if r.name == "normscope.access"]
    assert line["action"] == "upload" and line["file"] == "x_evil_"
