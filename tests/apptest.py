"""Driving the app as a person would, for the AppTest modules: open a page, upload a file, check it is clean.

Their fixtures (the tiny zoo, a cache per test) are in conftest.py; a module using them marks itself with
``pytestmark = pytest.mark.usefixtures("cache_dir")``.
"""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from ui import navigation

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
PAIR = ["builtin-vgg11-none", "builtin-vgg11-bn"]
TIMEOUT = 180  # seconds per script run; the CPU may be busy with training
PAGES = {  # page (its url path in ui/navigation.py) -> widget keys a user (and this test) drives there
    "overview": [],
    "models": ["upload_file", "upload_manual", "upload_dataset", "train_preset", "train_arch", "train_norm",
               "train_precision_tiny", "train_compile_tiny"],
    "robustness": ["rob_models", "rob_attacks", "rob_per_class", "rob_precision", "sweep_attack"],
    "training": ["dyn_models"],
    "ligs": ["ligs_models", "ligs_kind", "ligs_size", "ligs_per_class"],
    "gallery": ["gal_models", "gal_attack", "gal_per_class", "gal_shown"],
    "transfer": ["tr_sources", "tr_targets", "tr_attack", "tr_per_class"],
    "landscape": ["ls_comparison", "ls_train_models", "ls_models", "ls_image", "ls_plane", "ls_threat",
                  "ls_radius_l2", "ls_resolution", "ls_profile_models"],
    "features": ["nrf_reliance_run"],
    "corruptions": ["cor_models", "cor_names", "cor_severities", "cor_source", "cor_per_class", "cor_image",
                    "cor_fourier_eps"],
    "experiments": ["any_experiment", "any_models", "any_ligs_ligs.kind", "any_ligs_ligs.size", "any_ligs_data.per_class"],
}


def open_page(page: str, **state) -> AppTest:
    """A fresh session on ``page`` with the built-in data source (and any other session state)."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for key, value in {"dataset": "builtin", **state}.items():
        at.session_state[key] = value
    at.run()
    if page != "overview":
        at.switch_page(navigation.page_def(page).file).run()
    return at


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.file_uploader(key="upload_file").set_value((name, data, "application/octet-stream")).run()
    assert not at.exception, [e.value for e in at.exception]
    return at
