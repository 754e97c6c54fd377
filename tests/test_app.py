"""The Streamlit dashboard, driven headless with AppTest: every page, computations, uploads, jobs, demo mode.

Runs on the built-in dataset's tiny zoo checkpoints with 1-5 images per class, so each computation
takes seconds. Every test gets its own cache directory (NORMSCOPE_CACHE), hence its own uploads and jobs.
"""
from __future__ import annotations

import json
import pickle
import re
import shutil
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from streamlit.runtime.scriptrunner.script_cache import ScriptCache
from streamlit.testing.v1 import AppTest

from core import jobs
from core.checkpoints import load_checkpoint
from core.findings import FINDINGS
from ui import navigation

from apptest import APP, PAGES, PAIR, ROOT, TIMEOUT, assert_clean, open_page, upload
from reference_models.files import torch_bytes

pytestmark = pytest.mark.usefixtures("cache_dir")  # its own cache and the tiny zoo (conftest.py)


def widget_keys(at: AppTest) -> set[str]:
    kinds = ("selectbox", "multiselect", "number_input", "text_input", "checkbox", "toggle", "slider", "button",
             "file_uploader", "radio")
    return {w.key for kind in kinds for w in at.get(kind) if getattr(w, "key", None)}


def test_every_page_is_tested():
    assert list(PAGES) == [p.url_path for p in navigation.PAGES]


def test_core_never_imports_streamlit():
    imports = re.compile(r"^\s*(import|from)\s+streamlit\b", re.MULTILINE)
    offenders = [p for p in (ROOT / "core").rglob("*.py") if imports.search(p.read_text())]
    assert not offenders


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_with_its_widgets(page):
    at = open_page(page)
    assert_clean(at)
    if page == "overview":  # AppTest (1.67) reports no sidebar elements after switch_page; the sidebar is app.py's
        assert {"dataset", "demo_mode", "clear_cache"} <= widget_keys(at)
    assert set(PAGES[page]) <= widget_keys(at)


def test_overview_is_the_findings_scoreboard_then_the_models_behind_it():
    at = open_page("overview")
    assert_clean(at)
    scoreboard = at.dataframe[0].value
    pairs = next(d.value for d in at.dataframe if "model" in d.value.columns).set_index("model")
    assert list(scoreboard["#"]) == [f.number for f in FINDINGS]
    assert set(scoreboard["verdict"]) == {"not measured"}  # nothing cached yet for the test zoo's pair
    assert scoreboard.set_index("#").loc["demo", "rows"] == "1 not measured"  # the conflict split, not yet evaluated
    assert set(PAIR) == set(pairs.index) and set(pairs["dataset"]) == {"builtin"}
    assert len(at.expander) >= len(FINDINGS)  # each finding's rows and forest plot, drawn once opened
    assert not [d for d in at.dataframe if "measure" in d.value.columns]
    at.session_state["finding_pgd_open"] = True  # the reader opens finding 1
    at.run()
    (rows,) = [d.value for d in at.dataframe if "measure" in d.value.columns]
    assert len(rows) >= 1 and set(rows["verdict"]) == {"not measured"}


def test_robustness_computes_then_renders_from_cache():
    at = open_page("robustness")
    at.multiselect(key="rob_models").set_value(PAIR)
    at.multiselect(key="rob_attacks").set_value(["pgd_l2", "fgsm"])
    at.number_input(key="rob_per_class").set_value(2).run()
    at.button(key="rob_run").click().run()
    assert_clean(at)
    table = at.dataframe[0].value
    assert list(table["model"]) == PAIR and set(table["dataset"]) == {"builtin"}
    assert table.iloc[:, 4:].notna().all().all() and len(at.get("plotly_chart")) == 1
    # A second session with the same settings renders from the cache: no button, numbers at once.
    again = open_page("robustness")
    again.multiselect(key="rob_models").set_value(PAIR)
    again.multiselect(key="rob_attacks").set_value(["pgd_l2", "fgsm"])
    again.number_input(key="rob_per_class").set_value(2).run()  # its speed: benchmarks/app_render.py
    assert not [b for b in again.button if b.key == "rob_run"]
    assert again.dataframe[0].value.equals(table)


def test_missing_results_can_be_computed_by_a_background_job():
    at = open_page("ligs")
    at.multiselect(key="ligs_models").set_value(PAIR)
    at.number_input(key="ligs_per_class").set_value(2).run()
    assert not at.dataframe
    at.button(key="ligs_run_bg").click().run()
    assert_clean(at)
    (job,) = jobs.list_jobs()
    assert job.spec["kind"] == "evaluate" and len(job.spec["params"]["evaluations"]) == 2
    deadline = time.time() + 120
    while job.status["state"] in ("queued", "running") and time.time() < deadline:
        time.sleep(0.5)
    assert job.status["state"] == "done", job.status
    at.run()
    assert_clean(at)
    assert list(at.dataframe[0].value["model"]) == PAIR and not [b for b in at.button if b.key == "ligs_run"]


def test_a_vanished_background_job_is_forgotten_quietly():
    at = open_page("ligs", ligs_run_job="20260101-000000-gone00")
    at.multiselect(key="ligs_models").set_value(PAIR)
    at.number_input(key="ligs_per_class").set_value(2).run()
    assert_clean(at)
    assert "ligs_run_job" not in at.session_state and any(b.key == "ligs_run_bg" for b in at.button)


def test_eps_sweep_and_a_bad_eps_list():
    at = open_page("robustness")
    at.multiselect(key="rob_models").set_value(PAIR[:1])
    at.number_input(key="rob_per_class").set_value(1)
    at.text_input(key="sweep_eps_pgd_l2").set_value("0, 0.25, 1").run()
    at.button(key="sweep_run").click().run()
    assert_clean(at)
    assert len(at.get("plotly_chart")) >= 1
    at.text_input(key="sweep_eps_pgd_l2").set_value("0, big").run()
    assert not at.exception and "is not a finite number" in at.error[0].value


def test_demo_mode_shows_not_precomputed_and_never_computes():
    at = open_page("ligs", demo_mode=True)
    assert_clean(at)
    assert any("not precomputed" in w.value for w in at.warning)
    assert not [b for b in at.button if b.key == "ligs_run"]


def test_ligs_explorer_computes_distribution_and_per_class():
    at = open_page("ligs")
    at.multiselect(key="ligs_models").set_value(PAIR)
    at.number_input(key="ligs_per_class").set_value(3).run()
    at.button(key="ligs_run").click().run()
    assert_clean(at)
    summary = at.dataframe[0].value
    assert list(summary["model"]) == PAIR and (summary["n"] == 30).all() and set(summary["dataset"]) == {"builtin"}
    assert len(at.get("plotly_chart")) == 2


def test_gallery_shows_images_for_each_model():
    at = open_page("gallery")
    at.multiselect(key="gal_models").set_value(PAIR)
    at.slider(key="gal_shown").set_value(2).run()
    at.button(key="gal_run").click().run()
    assert_clean(at)
    assert len(at.image) == 2 * (1 + 2 * len(PAIR))  # per row: clean + (adversarial, perturbation) per model
    assert set(at.dataframe[0].value["model"]) == set(PAIR)
    assert [b.key for b in at.download_button] == ["gal_png", "gal_preds_csv"]


def test_corruptions_page_computes_cells_fourier_maps_and_spectra():
    at = open_page("corruptions")
    at.multiselect(key="cor_models").set_value(PAIR)
    at.multiselect(key="cor_names").set_value(["gaussian_noise", "contrast"])
    at.multiselect(key="cor_severities").set_value([1, 5])
    at.number_input(key="cor_per_class").set_value(1).run()
    assert_clean(at)
    assert len(at.image) == 1 + 2 * 2  # the gallery: clean, then each corruption at each severity
    at.button(key="cor_run").click().run()
    assert_clean(at)
    summary = at.dataframe[0].value
    assert list(summary["model"]) == PAIR and summary["mean_corruption_error"].between(0, 1).all()
    at.select_slider(key="cor_shown").set_value(5).run()  # one severity: each bar's 95 % Wilson interval
    assert_clean(at)
    assert "Wilson" in at.get("plotly_chart")[0].proto.spec and '"error_y"' in at.get("plotly_chart")[0].proto.spec
    at.button(key="cor_fourier_run").click().run()
    at.button(key="cor_spectrum_run").click().run()
    assert_clean(at)
    assert len(at.get("plotly_chart")) == 4 and any("energy above a quarter" in c.value for c in at.caption)
    at.number_input(key="cor_fourier_eps").set_value(0.1).run()  # a new norm: not cached, offered again
    assert any(b.key == "cor_fourier_run" for b in at.button)


def test_corruptions_page_names_missing_cifar10c_arrays(tmp_path, monkeypatch):
    monkeypatch.setenv("NORMSCOPE_CIFAR10C", str(tmp_path / "nowhere"))
    at = open_page("corruptions")
    at.multiselect(key="cor_models").set_value(PAIR[:1])
    at.multiselect(key="cor_names").set_value(["fog"])
    at.multiselect(key="cor_severities").set_value([1])
    at.selectbox(key="cor_source").set_value("cifar10c")
    at.number_input(key="cor_per_class").set_value(1).run()
    at.button(key="cor_run").click().run()
    assert not at.exception and any("CIFAR-10" in e.value for e in at.error)


def test_transfer_matrix_computes_then_shows_heatmap_average_and_examples():
    at = open_page("transfer")
    at.multiselect(key="tr_sources").set_value(PAIR)
    at.multiselect(key="tr_targets").set_value(PAIR)
    at.number_input(key="tr_per_class").set_value(1).run()
    assert not at.dataframe  # nothing cached yet: the page offers to compute
    at.button(key="tr_run").click().run()
    assert_clean(at)
    table = at.dataframe[0].value.set_index("source")
    assert list(table.columns) == ["norm", *PAIR, "Avg"] and table[PAIR].notna().all().all()
    assert table.loc[PAIR[0], "Avg"] == pytest.approx(table.loc[PAIR[0], PAIR].mean())
    cis = at.dataframe[1].value.set_index("source")  # every cell's 95 % Wilson interval, as text
    assert all(str(cis.loc[s, t]).startswith(f"{table.loc[s, t]:.3f} [") for s in PAIR for t in PAIR)
    heatmap = at.get("plotly_chart")[0].proto.spec
    assert "*" in heatmap  # the white-box diagonal is marked
    assert len(at.image) == 2 * 5  # clean + adversarial for the 5 images shown
    assert "None of the chosen sources has epoch snapshots" in at.info[0].value


def test_transfer_refuses_models_of_different_class_counts_clearly(cache_dir):
    from core.catalog import store_upload
    from core.models import build

    from core.checkpoints import INPUT_NORMALIZATIONS

    weights = build("vgg11", norm="bn", width=0.125, num_classes=7).backbone.state_dict()
    seven = store_upload(torch_bytes(weights), "seven.pt",
                         dataset="builtin", root=cache_dir, normalization=INPUT_NORMALIZATIONS["cifar10"])
    at = open_page("transfer")
    at.multiselect(key="tr_targets").set_value([*PAIR, seven.label]).run()
    assert not at.exception and "cannot share a transfer matrix" in at.error[0].value


def test_training_dynamics_overlays_histories():
    at = open_page("training")
    assert_clean(at)
    assert len(at.get("plotly_chart")) == 1 and [b.key for b in at.download_button] == ["dyn_csv"]
    spec = at.get("plotly_chart")[0].proto.spec
    assert "Wilson" in spec and '"error_y"' in spec  # the probes' accuracies (200 images each here) carry intervals


def test_good_uploads_join_every_model_list(zoo):
    good = (zoo / "builtin-vgg11-bn.safetensors").read_bytes()
    at = upload(open_page("models"), "mine.safetensors", good)
    assert "Stored" in at.success[0].value and "builtin" in at.success[0].value
    pt = torch_bytes(load_checkpoint(zoo / "builtin-vgg11-none.safetensors").model.state_dict())
    at = upload(at, "plain.pt", pt)
    assert "vgg11 (norm=none" in at.success[0].value
    options = open_page("robustness").multiselect(key="rob_models").options
    assert {o.split(" (upload")[0] for o in options if "(upload" in o} == {"mine", "plain"}


def evil_pickle(marker: Path) -> bytes:
    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))
    return pickle.dumps(Evil())


def published_bad_files() -> dict[str, tuple[bytes, str]]:
    """Issue 27's bad inputs: a truncated legacy-format file, a .ckpt holding a pickled module, an option-A file
    with one block missing."""
    from reference_models.akamaster import resnet
    from reference_models.files import akamaster_file, randomized, with_module_prefix

    net = randomized(resnet(20))
    cut = {k: v for k, v in net.state_dict().items() if not k.startswith("layer3.2.")}
    return {"resnet20-12fca82f.th": (akamaster_file(net)[:5000], "Was it truncated"),
            "epoch=3.ckpt": (torch_bytes({"state_dict": net.state_dict(), "module": torch.nn.Linear(64, 10)}),
                             "would import"),
            "resnet20-cut.th": (torch_bytes({"state_dict": with_module_prefix(cut)}), "is a block missing")}


def test_bad_uploads_show_readable_errors(tmp_path, monkeypatch, zoo):
    good = (zoo / "builtin-vgg11-bn.safetensors").read_bytes()
    state = load_checkpoint(zoo / "builtin-vgg11-bn.safetensors").model.state_dict()
    nan = {k: (torch.full_like(v, float("nan")) if k.endswith("head.weight") else v) for k, v in state.items()}
    marker = tmp_path / "pwned"
    cases = {"corrupt.safetensors": (b"\x00not a checkpoint" * 8, "not a checkpoint: neither"),
             "truncated.safetensors": (good[: len(good) // 2], "not a valid safetensors"),
             "nan.pt": (torch_bytes(nan), "NaN"),
             "evil.pt": (evil_pickle(marker), "never run"),
             "notes.txt.pt": (b"hello", "not a checkpoint"),
             **published_bad_files()}
    at = open_page("models")
    for name, (data, message) in cases.items():
        at = upload(at, name, data)
        assert at.error and message in at.error[0].value, (name, [e.value for e in at.error])
    assert not marker.exists()
    monkeypatch.setattr("core.checkpoints.MAX_CHECKPOINT_BYTES", 1000)
    at = upload(open_page("models"), "huge.safetensors", good)  # a fresh page: the widget's size limit changed
    assert at.error and "exceeds" in at.error[0].value, ([s.value for s in at.success], [i.value for i in at.info])


def test_wrong_shape_and_ambiguous_norm_then_manual_architecture():
    from core.models import build
    gn = torch_bytes(build("vgg11", norm="gn", width=0.125).backbone.state_dict())
    at = upload(open_page("models"), "gn.pt", gn)
    assert "IN, LN or GN" in at.error[0].value
    at.checkbox(key="upload_manual").check().run()
    at.selectbox(key="upload_arch").set_value("vgg11").run()
    at.selectbox(key="upload_norm").set_value("gn")
    at.number_input(key="upload_width").set_value(0.25).run()
    assert "does not fit vgg11" in at.error[0].value  # wrong width: the shape mismatch is named
    at.number_input(key="upload_width").set_value(0.125).run()
    assert not at.success and "does not record the input normalization" in at.warning[0].value  # a backbone only
    at.radio[0].set_value(at.radio[0].options[0]).run()
    assert_clean(at)
    assert "vgg11 (norm=gn" in at.success[0].value


def test_torchvision_upload_asks_the_normalization_and_records_no_dataset_it_was_not_told(cache_dir):
    import torchvision
    data = torch_bytes(torchvision.models.resnet18(num_classes=10).state_dict())
    at = upload(open_page("models"), "tv.pth", data)
    assert not at.success and not at.error and "does not record the input normalization" in at.warning[0].value
    question = at.radio[0]
    assert question.value is None and any(o.startswith("ImageNet") for o in question.options)
    question.set_value("custom").run()
    at.text_input(key=f"{question.key}_mean").set_value("0.5, 0.5").run()
    at.text_input(key=f"{question.key}_std").set_value("0.25 0.25 0.25").run()
    assert "mean needs 3 numbers" in at.error[0].value and not at.success
    at.text_input(key=f"{question.key}_mean").set_value("0.5, 0.5, 0.5").run()
    assert_clean(at)
    assert "tv_resnet18" in at.success[0].value and "trained on **unknown**" in at.success[0].value
    (stored,) = (load_checkpoint(p) for p in cache_dir.glob("uploads/*.safetensors"))
    assert stored.spec.mean == (0.5, 0.5, 0.5) and stored.spec.std == (0.25, 0.25, 0.25)
    assert stored.dataset == "unknown" and stored.meta["input_normalization"] == "given by the user"


def test_a_published_legacy_file_uploads_under_its_own_name_and_its_data_shift_is_said(cache_dir):
    """akamaster's resnet20-12fca82f.th as its trainer saved it (made here from its own resnet.py): the page names the
    ImageNet mean/std its trainer used as a choice, and its numbers read on cifar10-jpeg say it was trained on
    genuine CIFAR-10."""
    from reference_models.akamaster import resnet
    from reference_models.files import akamaster_file, randomized

    at = open_page("models")
    at.selectbox(key="upload_dataset").set_value("cifar10").run()
    at = upload(at, "resnet20-12fca82f.th", akamaster_file(randomized(resnet(20))))
    assert not at.success and "akamaster" in at.warning[0].value and "ImageNet" in at.warning[0].value
    question = at.radio[0]
    akamaster = next(o for o in question.options if o.startswith("ImageNet mean/std (akamaster's trainer)"))
    question.set_value(akamaster).run()
    assert_clean(at)
    assert "resnet20a (norm=bn" in at.success[0].value and "trained on **cifar10**" in at.success[0].value
    (stored,) = (load_checkpoint(p) for p in cache_dir.glob("uploads/*.safetensors"))
    assert stored.meta["legacy_batchnorm"].startswith("19 BatchNorm") and stored.spec.mean == (0.485, 0.456, 0.406)
    at = open_page("robustness", dataset="cifar10-jpeg")
    label = next(o for o in at.multiselect(key="rob_models").options if o.startswith("resnet20-12fca82f"))
    at.multiselect(key="rob_models").set_value([label]).run()
    assert_clean(at)
    from core.data import available_datasets
    said = any("trained on genuine CIFAR-10, evaluated on cifar10-jpeg" in i.value for i in at.info)
    assert said == ("cifar10-jpeg" in available_datasets())  # without the copy, nothing is read on it


def test_training_job_starts_shows_progress_cancels_and_resumes():
    at = open_page("models")
    at.number_input(key="train_epochs_tiny").set_value(200)  # far longer than the test: the cancel must land
    assert at.selectbox(key="train_precision_tiny").value == "fp32" and not at.checkbox(key="train_compile_tiny").value
    at.selectbox(key="train_precision_tiny").set_value("bf16")
    at.button(key="train_start").click().run()
    assert_clean(at)
    assert "Started job" in at.success[0].value
    assert any("bf16 trains" in c.value and "fp32's images per second" in c.value for c in at.caption)  # measured
    (job,) = jobs.list_jobs()
    config = job.spec["params"]["config"]
    assert config["preset"] == "tiny" and config["epochs"] == 200 and config["precision"] == "bf16"
    at.run()
    assert any(b.key == "job_cancel" for b in at.button)
    job.cancel()
    deadline = time.time() + 120
    while job.status["state"] in ("queued", "running") and time.time() < deadline:
        time.sleep(0.5)
    assert job.status["state"] == "cancelled", job.status
    at.run()
    at.button(key="job_cancel_resume").click().run()  # the cancelled job goes on from its last epoch
    assert_clean(at)
    assert job.status["state"] in ("queued", "running") and not (job.directory / "cancel").exists()
    job.cancel()
    while job.status["state"] in ("queued", "running") and time.time() < deadline + 120:
        time.sleep(0.5)


@pytest.fixture
def one_script_cache_lock(monkeypatch):
    """Compile scripts under one lock, as the real server's single ScriptCache does.

    AppTest gives every run its own ScriptCache, so two sessions in threads compile at once, and CPython 3.11's
    parser is not thread-safe ("SystemError: AST constructor recursion depth mismatch", seen in CI).
    """
    lock = threading.Lock()
    get_bytecode = ScriptCache.get_bytecode

    def locked(self, script_path):
        with lock:
            return get_bytecode(self, script_path)

    monkeypatch.setattr(ScriptCache, "get_bytecode", locked)


def test_two_sessions_compute_at_once(one_script_cache_lock):
    sessions = [open_page("robustness"), open_page("robustness")]
    for at, attack in zip(sessions, ["pgd_linf", "cw_l2"]):
        at.multiselect(key="rob_models").set_value(PAIR[:1])
        at.multiselect(key="rob_attacks").set_value([attack])
        at.number_input(key="rob_per_class").set_value(1).run()
        at.button(key="rob_run").click()
    threads = [threading.Thread(target=at.run) for at in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for at in sessions:
        assert_clean(at)
        assert at.dataframe[0].value.iloc[0, 4:].notna().all()


def test_loss_landscape_shows_two_surfaces_on_one_scale_and_the_profiles():
    at = open_page("landscape")
    assert "None of the chosen models recorded the optimization landscape" in at.info[0].value  # the tiny zoo's
    at.multiselect(key="ls_models").set_value(PAIR)
    at.slider(key="ls_resolution").set_value(5).run()
    at.button(key="ls_run").click().run()
    assert_clean(at)
    charts = at.get("plotly_chart")
    assert len(charts) == 2 * 2 + 1  # per model a 3-D surface and its contour / class map; one profile plot
    surfaces = [json.loads(c.proto.spec)["data"][0] for c in charts[:4:2]]
    assert [s["type"] for s in surfaces] == ["surface", "surface"] and len(at.image) == 1
    losses = [v for s in surfaces for row in s["z"] for v in row]
    assert all((s["cmin"], s["cmax"]) == (min(losses), max(losses)) for s in surfaces)  # one colour scale
    assert [m.label for m in at.metric].count("LIGS (this image)") == 2
    assert {"ls_profile_csv", "ls_surface_0_csv", "ls_surface_1_csv"} <= {b.key for b in at.download_button}


def test_loss_landscape_draws_the_bands_of_a_run_trained_with_the_option(tmp_path, monkeypatch, builtin):
    from core.train import preset, train

    zoo = tmp_path / "landscape_zoo"
    train(preset("tiny", arch="vgg11", norm="bn", epochs=1, train_subset=256, batch_size=64, probe_per_class=1,
                 probe_steps=1, landscape_every=2), zoo / "builtin-vgg11-bn-landscape", dataset=builtin)
    monkeypatch.setenv("NORMSCOPE_ZOO", str(zoo))
    at = open_page("landscape")
    assert_clean(at)
    assert not [i for i in at.info if "recorded the optimization landscape" in i.value]
    assert at.multiselect(key="ls_train_models").value == ["builtin-vgg11-bn-landscape"]
    bands = at.get("plotly_chart")[0].proto.spec
    assert "Optimization landscape" in bands and bands.count('"toself"') == 2  # loss and gradient change bands
    assert "Cost of the measurement" in at.caption[0].value


def test_loss_landscape_comparison_selects_the_zoo_runs_of_a_paper_figure(tmp_path, monkeypatch, builtin):
    from core.train import preset, train
    from core.zoo import LANDSCAPE_COMPARISONS

    title = "Normalizations on VGG11 (Fig. A8 uses VGG16)"
    names = LANDSCAPE_COMPARISONS[title][:2]  # its BN and norm-free runs, as tiny stand-ins
    zoo = tmp_path / "landscape_zoo"
    for name, norm in zip(names, ("bn", "none")):
        train(preset("tiny", arch="vgg11", norm=norm, epochs=1, train_subset=256, batch_size=64, probe_per_class=1,
                     probe_steps=1, landscape_every=2), zoo / name, dataset=builtin)
    monkeypatch.setenv("NORMSCOPE_ZOO", str(zoo))
    at = open_page("landscape")
    assert_clean(at)
    assert at.selectbox(key="ls_comparison").options == [title, "Any models"]  # only comparisons with 2+ runs here
    assert at.multiselect(key="ls_train_models").value == list(names)
    summary = at.dataframe[0].value
    assert summary["medians over"].tolist() == ["all steps", "last epoch"] * 2
    assert summary["measured steps"].tolist() == [2, 2, 2, 2]  # one epoch: 4 steps of 64 images, every 2nd
    at.multiselect(key="ls_train_models").set_value([names[1]]).run()
    at.selectbox(key="ls_comparison").set_value("Any models").run()
    assert at.multiselect(key="ls_train_models").value == [names[1]]  # "Any models" keeps the user's choice
    at.selectbox(key="ls_comparison").set_value(title).run()
    assert_clean(at)
    assert at.multiselect(key="ls_train_models").value == list(names)


# --- A first start without data: the zoo's precomputed findings, and Get CIFAR-10 --------------------------------

@pytest.fixture
def no_data(tmp_path, monkeypatch) -> Path:
    """The shipped zoo and its precomputed results, no dataset on disk (a fresh clone); returns NORMSCOPE_DATA."""
    from core.catalog import SHIPPED_ZOO

    monkeypatch.setenv("NORMSCOPE_ZOO", str(SHIPPED_ZOO))
    monkeypatch.setenv("NORMSCOPE_CIFAR10_JPEG", str(tmp_path / "no-jpeg-copy"))
    monkeypatch.setenv("NORMSCOPE_DATA", str(tmp_path / "data"))
    return tmp_path / "data"


def shipped_pgd_l2() -> dict[str, float]:
    """The shipped l2-PGD robust accuracy at the paper's settings on cifar10-jpeg, by checkpoint name, read straight
    from checkpoints/results.json.xz: the truth the pages must show."""
    from core.attacks import paper_spec
    from core.catalog import RESULTS_SEED, SHIPPED_ZOO
    from core.io import read_json
    from core.config import config_dict

    found, paper = read_json(SHIPPED_ZOO / RESULTS_SEED), config_dict(paper_spec("pgd_l2"))
    return {r["checkpoint"]["name"]: r["robust_accuracy"] for k, r in found.items() if k.startswith("robustness:")
            and r["dataset"] == "cifar10-jpeg" and r["config"]["data"]["per_class"] == 100
            and r["config"]["attack"] == paper}


def test_first_start_without_data_shows_the_zoos_precomputed_results(no_data):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()  # no session state: what a new visitor gets
    assert_clean(at)
    assert at.selectbox(key="dataset").options == ["builtin"] and "get_cifar10" in widget_keys(at)
    scoreboard = at.dataframe[0].value  # the findings, scored from the shipped results (core.findings)
    assert list(scoreboard["#"]) == [f.number for f in FINDINGS]
    assert scoreboard.loc[0, "verdict"] == "holds" and scoreboard.loc[2, "verdict"] == "reversed"  # RESULTS.md
    assert scoreboard.loc[0, "clearest effect (points, 95 % CI)"].startswith("+")
    at.session_state["overview_others_open"] = True  # the other models' table is drawn once opened
    at.run()
    table = pd.concat([d.value for d in at.dataframe if "model" in d.value.columns]).set_index("model")
    pgd = shipped_pgd_l2()
    assert len(pgd) >= 10 and set(pgd) <= set(table.index) and set(table.loc[list(pgd), "dataset"]) == {"cifar10-jpeg"}
    assert all(table.loc[name, "l2-PGD acc (20 steps)"] == pytest.approx(v) for name, v in pgd.items())
    assert any("not on this machine" in c.value and "Get CIFAR-10" in c.value for c in at.caption)

    at.switch_page(navigation.page_def("robustness").file).run()  # data source still the built-in set
    assert_clean(at)
    rob = at.dataframe[0].value.set_index("model")
    assert all(name.startswith("cifar10jpeg-") for name in rob.index)
    shown = [name for name in rob.index if name in pgd]
    assert shown and all(rob.loc[name, "PGD-l2 0.25 (20)"] == pytest.approx(pgd[name]) for name in shown)
    assert {e.split(" · ")[-1] for e in at.multiselect(key="rob_models").options} == {"builtin", "cifar10-jpeg"}


def test_new_results_on_a_model_whose_dataset_is_missing_say_how_to_get_it(no_data):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page(navigation.page_def("robustness").file).run()
    at.multiselect(key="rob_models").set_value(["cifar10jpeg-vgg11-bn", "builtin-vgg11-bn"])
    at.multiselect(key="rob_attacks").set_value(["fgsm"])
    at.number_input(key="rob_per_class").set_value(3).run()  # not precomputed
    assert_clean(at)
    warning = at.warning[0].value  # the table's (the eps sweep below says the same of its points)
    assert "1 result(s)" in warning and "not on this machine" in warning and "Get CIFAR-10" in warning
    assert "1 of 1 evaluations" in at.info[0].value  # only the built-in model's result is offered to compute


def test_get_cifar10_downloads_then_selects_it(no_data, monkeypatch):
    import hashlib
    import urllib.error
    from dataclasses import replace

    from core.data import download
    from tests.test_data import FAKE_CIFAR, served, tarball

    def offline(url, timeout):
        raise urllib.error.URLError("Network is unreachable")
    monkeypatch.setattr(download, "open_url", offline)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.button(key="get_cifar10").click().run()
    assert not at.exception and "offline" in at.error[0].value and not no_data.joinpath("cifar-10-batches-py").exists()

    data = tarball(FAKE_CIFAR)
    monkeypatch.setattr(download, "CIFAR10", replace(download.CIFAR10, md5=hashlib.md5(data).hexdigest()))
    monkeypatch.setattr(download, "open_url", served(data))
    at.button(key="get_cifar10").click().run()
    assert not at.exception and (no_data / "cifar-10-batches-py" / "data_batch_1").is_file()
    assert at.selectbox(key="dataset").value == "cifar10" and "get_cifar10" not in widget_keys(at)


def test_features_page_fast_demo_computes_the_conflict_reliance():
    at = open_page("features")
    at.button(key="nrf_reliance_run").click().run()
    assert_clean(at)
    charts = [c for c in at.get("plotly_chart")]
    assert charts, "the reliance bar chart is shown"
    assert any("builtin" in c.value for c in at.caption)


def test_features_page_plots_the_shipped_seed_spread_and_says_when_none_ships(zoo):
    """The demo's one number comes with its distribution over seeds and kernel paths (checkpoints/)."""
    from core.features import SPREAD_FILE, seed_spread

    at = open_page("features")
    assert any("No seed-spread measurement" in c.value for c in at.caption)
    shutil.copy(ROOT / "checkpoints" / SPREAD_FILE, zoo / SPREAD_FILE)
    try:
        at = open_page("features")
        assert_clean(at)
        assert any(c.value.startswith(seed_spread(zoo).summary()) for c in at.caption)
        assert len(at.get("plotly_chart")) >= 1
    finally:
        (zoo / SPREAD_FILE).unlink()


def test_a_models_results_come_from_one_dataset_cached_first_then_the_data_source(no_data):
    """Genuine CIFAR-10 on disk (the data source) and a model of the JPEG copy: its shipped results are read from
    the copy, new ones computed on CIFAR-10; one model's results in one view come from one dataset."""
    from core.attacks import paper_spec
    from core.catalog import list_checkpoints
    from core.experiments import EvalData, Evaluation
    from core.experiments import RunContext
    from core.planning import plan
    from core.robustness import RobustnessConfig, robustness
    from ui import state

    entry = next(e for e in list_checkpoints() if e.name == "cifar10jpeg-vgg11-bn")
    (no_data / "cifar-10-batches-py").mkdir(parents=True)  # what torchvision_available looks for

    def asked(source: str, per_class: int = 100) -> Evaluation:
        config = RobustnessConfig(paper_spec("pgd_l2"), EvalData(source, per_class=per_class))
        return Evaluation.of(entry, robustness, config)

    shipped = RunContext(state.cache())  # what the pages read: the cache seeded with the shipped results

    def on(requests: dict) -> dict:
        return {k: r.config.data.dataset for k, r in plan(requests, shipped).requests.items()}
    assert on({"paper": asked("cifar10")}) == {"paper": "cifar10-jpeg"}  # shipped
    assert on({"new": asked("cifar10", 3)}) == {"new": "cifar10"}  # computable on the source
    assert on({"paper": asked("cifar10"), "new": asked("cifar10", 3)}) == {"paper": "cifar10", "new": "cifar10"}
    assert on({"paper": asked("builtin")}) == {"paper": "cifar10-jpeg"}  # never toy images
    nowhere = plan({"new": asked("builtin", 3)}, shipped)
    assert nowhere.requests == {} and nowhere.unreachable == {"cifar10-jpeg": 1}  # left out, and counted


def test_user_errors_are_one_line_and_bugs_keep_their_traceback():
    def page():
        from core.errors import ParameterError
        from ui import render
        with render.user_errors("Cannot do it"):
            raise ParameterError("eps must be positive")
        with render.user_errors("Cannot do it"):
            raise ValueError("an internal invariant broke")

    at = AppTest.from_function(page, default_timeout=TIMEOUT).run()
    assert [e.value for e in at.error] == ["Cannot do it: eps must be positive"]
    assert at.exception and "internal invariant" in at.exception[0].value


def test_any_experiment_computes_a_declared_experiment_with_its_config_as_a_form(zoo):
    """The LIGS of the generic page equals core's on the same config: the form's fields are the config's."""
    from core.catalog import list_checkpoints
    from core.experiments import EvalData, RunContext
    from core.metrics import LIGSSpec
    from core.robustness import LIGSConfig, ligs_report

    at = open_page("experiments")
    at.multiselect(key="any_models").set_value(PAIR)
    at.selectbox(key="any_ligs_ligs.kind").set_value("uniform")
    at.number_input(key="any_ligs_data.per_class").set_value(2).run()
    at.button(key="any_run_ligs").click().run()
    assert_clean(at)
    table = at.dataframe[0].value.set_index("model")
    assert list(table.index) == PAIR and (table["n"] == 20).all() and set(table["kind"]) == {"uniform"}
    entry = next(e for e in list_checkpoints() if e.label == PAIR[1])
    direct = ligs_report(entry, LIGSConfig(LIGSSpec("uniform"), EvalData("builtin", per_class=2)), RunContext())
    assert table.loc[PAIR[1], "ligs"] == pytest.approx(direct.ligs)
    at.session_state["any_fields_open"] = True  # the reader opens every field
    at.run()
    assert_clean(at)
    assert len(at.json) == 1


def test_any_experiment_names_what_a_config_lacks_and_what_a_field_cannot_take():
    at = open_page("experiments")
    at.selectbox(key="any_experiment").set_value("transfer").run()
    assert not at.exception and "no default for source" in at.error[0].value  # a cell names its source
    at.selectbox(key="any_experiment").set_value("robustness").run()
    assert_clean(at)  # the paper's PGD-l2, its budget and steps left to the attack's paper settings
    assert at.selectbox(key="any_robustness_attack.name").value == "pgd_l2"
    assert at.text_input(key="any_robustness_attack.eps").value == ""
    assert at.text_input(key="any_robustness_attack.eps").placeholder == "the attack's paper budget"
    at.selectbox(key="any_robustness_attack.name").set_value("pgd_linf")
    at.text_input(key="any_robustness_attack.eps").set_value("2/255").run()
    assert_clean(at)
    assert at.button(key="any_run_robustness").label.startswith("Compute")
    at.text_input(key="any_robustness_attack.step_size").set_value("fast").run()
    assert not at.exception and "is not a finite number" in at.error[0].value


def test_any_experiment_draws_every_registered_experiments_form_without_an_error_box():
    """Each experiment, picked: its form, then its cached results, the offer to compute, or one readable line of
    what its config still needs (a transfer cell's source, an attack's name)."""
    from core.experiments import registry

    at = open_page("experiments")
    for name in registry():
        at.selectbox(key="any_experiment").set_value(name).run()
        assert not at.exception, (name, [e.value for e in at.exception])
        errors = [e.value for e in at.error]
        assert all(e.startswith("Cannot use these settings: ") and "\n" not in e for e in errors), (name, errors)
        assert errors or at.button(key=f"any_run_{name}").label.startswith("Compute"), name  # nothing cached here
