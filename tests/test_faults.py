"""The fault corpus (tests/faults.py) against the command line and the app: each bad checkpoint, name or
parameter gets one clear message (the CLI: one JSON error line and exit status 2; the app: one st.error, no
exception), no code in a file ever runs, and nothing already cached is lost."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from faults import MARKER, TRAVERSAL_NAMES, checkpoint_faults
from apptest import PAIR, assert_clean, open_page, upload

from core import cli
from core.cache import ResultCache
from core.catalog import uploads_dir

pytestmark = pytest.mark.usefixtures("cache_dir")  # its own cache and the tiny zoo (conftest.py)

ROOT = Path(__file__).resolve().parents[1]
SENTINEL = ("ligs:sentinel", {"ligs": 0.5, "note": "cached before the faults"})


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    return checkpoint_faults(ROOT / "checkpoints" / "builtin-vgg11-bn.safetensors",
                             ROOT / "checkpoints" / "builtin-resnet20-bn.safetensors",
                             tmp_path_factory.mktemp("faults"))


@pytest.fixture
def seeded(cache_dir) -> ResultCache:
    """The shared result cache, holding a result that no fault may lose."""
    cache = ResultCache(cache_dir)
    cache.set(*SENTINEL)
    return cache


def assert_nothing_lost(cache: ResultCache, entries: int) -> None:
    assert cache.get(SENTINEL[0]) == SENTINEL[1] and len(cache) == entries


def run_cli(capsys, *args: str) -> tuple[int, dict]:
    code = cli.main([*args, "--json"])
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out  # one line, no traceback
    return code, json.loads(out[0])


@pytest.mark.parametrize("fault", ["truncated", "empty", "empty-torch", "not-a-checkpoint", "malicious-pickle",
                                   "wrong-architecture", "unknown-architecture", "nan-weights", "oversized"])
def test_every_bad_checkpoint_is_one_clear_cli_error(corpus, fault, seeded, capsys):
    path, words = corpus[fault]
    before = len(seeded)
    for command in ("info", "eval"):
        code, out = run_cli(capsys, command, str(path))
        assert code == 2 and out["schema"] == "normscope.error/1" and words in out["error"], out
    assert not (path.parent / MARKER).exists()
    assert_nothing_lost(seeded, before)


def test_every_bad_checkpoint_is_one_clear_error_in_the_app(corpus, seeded, monkeypatch, cache_dir):
    before = len(seeded)
    at = open_page("models")
    for fault, (path, words) in corpus.items():
        if fault == "oversized":
            continue  # below, with a lower limit: a 512 MiB upload would only test the test's memory
        at = upload(at, path.name, path.read_bytes())
        assert [words in e.value for e in at.error] == [True], (fault, [e.value for e in at.error])
    assert not (corpus["truncated"][0].parent / MARKER).exists()
    monkeypatch.setattr("core.checkpoints.MAX_CHECKPOINT_BYTES", 1000)
    at = upload(open_page("models"), "big.safetensors", (ROOT / "checkpoints" / "builtin-vgg11-bn.safetensors").read_bytes())
    assert [e.value for e in at.error if "exceeds the limit of 1,000 bytes" in e.value]
    assert not list(uploads_dir(cache_dir).glob("*.safetensors"))  # nothing bad was stored
    assert_nothing_lost(seeded, before)


def test_path_traversal_names_stay_in_the_uploads_folder(zoo, cache_dir):
    good = (zoo / "builtin-vgg11-bn.safetensors").read_bytes()
    at = open_page("models")
    for name in TRAVERSAL_NAMES:
        at = upload(at, name, good)
        assert_clean(at)
    stored = list(cache_dir.rglob("*.safetensors"))
    assert stored and all(p.parent == uploads_dir(cache_dir) for p in stored)
    assert all(len(p.name) < 100 and "\x1b" not in p.name and not p.name.startswith(".") for p in stored)


def test_a_job_id_that_walks_out_of_the_jobs_folder_is_refused(tmp_path, capsys, monkeypatch):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "spec.json").write_text(json.dumps({"kind": "sleep", "params": {}}))
    monkeypatch.setenv("NORMSCOPE_CACHE", str(tmp_path / "cache"))
    code, out = run_cli(capsys, "jobs", "show", "../../elsewhere")
    assert code == 2 and "is not a job id" in out["error"]


@pytest.mark.parametrize("args, words", [
    (("eval", "CKPT", "--eps", "-0.1"), "eps must be"),
    (("eval", "CKPT", "--attack", "fgsm", "--eps", "-1"), "eps must be"),
    (("ligs", "CKPT", "--per-class", "0"), "images per class must be at least 1"),
    (("transfer", "--sources", "CKPT", "--targets"), "expected at least one"),
    (("eval", "CKPT", "--dataset", "cifar10"), "cifar10 not found"),
])
def test_bad_parameters_and_a_missing_dataset_are_one_clear_cli_error(args, words, seeded, capsys, tmp_path,
                                                                      monkeypatch):
    monkeypatch.setenv("NORMSCOPE_DATA", str(tmp_path / "no-datasets-here"))
    before = len(seeded)
    checkpoint = str(ROOT / "checkpoints" / "builtin-vgg11-bn.safetensors")
    args = [checkpoint if a == "CKPT" else a for a in args]
    try:
        code, out = run_cli(capsys, *args)
        message = out["error"]
    except SystemExit as e:  # argparse's own refusal: its one usage line on stderr, status 2
        code, message = e.code, capsys.readouterr().err
    assert code == 2 and words in message, message
    assert_nothing_lost(seeded, before)


def test_zero_steps_is_the_clean_accuracy_not_an_error(capsys):
    """PGD with no step is a defined request: it leaves every image where it is (tests/test_cli.py checks the
    numbers), so it is answered, not refused."""
    code, out = run_cli(capsys, "eval", str(ROOT / "checkpoints" / "builtin-vgg11-bn.safetensors"), "--steps", "0",
                        "--per-class", "1")
    (result,) = out["results"]
    assert code == 0 and result["robust_accuracy"] == result["clean_accuracy"]


def test_a_negative_eps_and_an_empty_selection_in_the_app(seeded):
    before = len(seeded)
    at = open_page("robustness")
    at.multiselect(key="rob_models").set_value(PAIR[:1])
    at.text_input(key="sweep_eps_pgd_l2").set_value("0, -0.25").run()
    assert not at.exception and [e.value for e in at.error if "eps" in e.value]
    at.multiselect(key="rob_models").set_value([]).run()
    assert not at.exception and not at.error and any("Select at least one model" in i.value for i in at.info)
    at.multiselect(key="rob_attacks").set_value([]).run()
    assert not at.exception
    assert_nothing_lost(seeded, before)
