"""Issue 41's upload attacks on a public server: a torch zip bomb (1 MB on disk, 1 GiB decoded), safetensors headers
that claim more than the file holds, refusals that left no log line, a limit in MiB that the browser enforced in
MB, session folders in the system's temp folder, and a tab icon fetched from the internet. The app's side is
driven with AppTest (tests/apptest.py); the browser's own requests are checked in tests/test_browser.py."""
from __future__ import annotations

import collections
import io
import json
import logging
import pickle
import re
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

import pytest
import torch
from apptest import open_page, upload

import core.checkpoints.formats as formats
from core.checkpoints import MAX_CHECKPOINT_BYTES, MB, CheckpointError, load_checkpoint_bytes
from ui import serving

ROOT = Path(__file__).resolve().parents[1]
ACCESS = "normscope.access"


# --- a torch.save zip bomb, built without holding its tensor -------------------------------------------------------

class _Storage:
    """Stands for storage "0" in the pickle: the pickler writes it as torch's persistent id."""


class _Tensor:
    """Pickles as torch's own call rebuilding a float32 tensor of ``numel`` elements over storage "0"."""

    def __init__(self, numel: int) -> None:
        self.numel = numel

    def __reduce__(self):
        return torch._utils._rebuild_tensor_v2, (STORAGE, 0, (self.numel,), (1,), False, collections.OrderedDict())


STORAGE = _Storage()


class _TorchPickler(pickle.Pickler):
    """torch.save's data.pkl: storages by persistent id ("storage", type, key, location, elements)."""

    def __init__(self, file: io.BytesIO, numel: int) -> None:
        super().__init__(file, protocol=2)
        self.numel = numel

    def persistent_id(self, obj: object) -> tuple | None:
        return ("storage", torch.FloatStorage, "0", "cpu", self.numel) if obj is STORAGE else None


def torch_zip_bomb(numel: int, chunk: int = 2 ** 20) -> bytes:
    """What ``torch.save({"w": torch.zeros(numel)})`` writes, but its storage deflated (2^28 elements: 1 GiB in a
    1.0 MB file), written in chunks: building it holds one chunk, where torch.save would hold the whole tensor."""
    pickled = io.BytesIO()
    _TorchPickler(pickled, numel).dump({"w": _Tensor(numel)})
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", pickled.getvalue())
        archive.writestr("archive/byteorder", "little")
        with archive.open("archive/data/0", "w") as storage:
            for start in range(0, numel * 4, chunk):
                storage.write(bytes(min(chunk, numel * 4 - start)))
        archive.writestr("archive/version", "3\n")
    return out.getvalue()


def safetensors_bytes(header: dict, body: bytes = b"") -> bytes:
    encoded = json.dumps(header).encode()
    return len(encoded).to_bytes(8, "little") + encoded + body


def test_the_bomb_is_a_real_torch_file():
    """Torch reads the small one as the tensor it claims: the bomb below is what torch.load would decode."""
    assert torch.equal(torch.load(io.BytesIO(torch_zip_bomb(10)), weights_only=True)["w"], torch.zeros(10))


def test_a_zip_bomb_is_refused_by_its_claimed_size_before_torch_reads_it(monkeypatch):
    bomb = torch_zip_bomb(2 ** 22)  # 16.8 MB decoded, 16 KB on disk
    monkeypatch.setattr("core.checkpoints.MAX_CHECKPOINT_BYTES", 4 * MB)
    monkeypatch.setattr(formats.torch, "load", lambda *a, **k: pytest.fail("torch.load ran on a zip bomb"))
    assert len(bomb) < 100_000
    with pytest.raises(CheckpointError, match=r"^bomb.pt: a torch.save zip whose entries claim 16.8 MB uncompressed, "
                                              r"over the 4 MB limit \(nothing was decompressed\)$"):
        load_checkpoint_bytes(bomb, "bomb.pt")


def test_a_deflated_torch_zip_within_the_limit_still_loads(monkeypatch):
    buffer = io.BytesIO()
    torch.save({"w": torch.arange(6.0)}, buffer)
    deflated = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as stored, \
            zipfile.ZipFile(deflated, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in stored.infolist():
            archive.writestr(info.filename, stored.read(info))
    formats.check_decoded_size(deflated.getvalue(), formats.TORCH_ZIP, "ok.pt", limit=10_000)
    state, _ = formats.parse_weights(deflated.getvalue(), "ok.pt", limit=10_000)
    assert torch.equal(state["w"], torch.arange(6.0))


def test_a_safetensors_header_claiming_more_than_the_limit_is_refused_from_the_header():
    lying = safetensors_bytes({"w": {"dtype": "F32", "shape": [2 ** 28], "data_offsets": [0, 16]}}, bytes(16))
    with pytest.raises(CheckpointError, match=r"^big.safetensors: a safetensors file whose header claims 1,073.7 MB "
                                              r"of tensors, over the 512 MB limit \(nothing was read\)$"):
        load_checkpoint_bytes(lying, "big.safetensors")


def test_safetensors_data_offsets_past_the_file_are_refused():
    short = safetensors_bytes({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, bytes(8))
    with pytest.raises(CheckpointError, match=r"not a valid safetensors file \(its header: tensor 'w' at bytes 0-16 "
                                              r"of 8, shape \[4\]\); was it truncated\?$"):
        load_checkpoint_bytes(short, "short.safetensors")
    with pytest.raises(CheckpointError, match="not a valid safetensors file"):  # a header that is not tensors
        load_checkpoint_bytes(safetensors_bytes({"w": {"dtype": "F32", "shape": "four"}}), "odd.safetensors")


MEASURE = """
import json, resource, sys
from core.checkpoints import CheckpointError, load_checkpoint
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    load_checkpoint(sys.argv[1])
    error = None
except CheckpointError as e:
    error = str(e)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"before_kib": before, "after_kib": after, "error": error}))
"""


@pytest.mark.slow
def test_the_1_mb_bomb_raises_peak_memory_by_far_less_than_its_1_gib(tmp_path):
    """Issue 41's own bomb, at the real limit, in a fresh process (its peak is this load's alone): 2^28 float32
    zeros, 1,024 MiB decoded. Before the size check, torch.load allocated and filled all of it."""
    bomb = tmp_path / "bomb.pt"
    bomb.write_bytes(torch_zip_bomb(2 ** 28))
    run = subprocess.run([sys.executable, "-c", MEASURE, str(bomb)], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    measured = json.loads(run.stdout)
    rise_mib = (measured["after_kib"] - measured["before_kib"]) / 1024
    print(f"bomb: {bomb.stat().st_size:,} bytes on disk, 1,024 MiB decoded; peak memory rose {rise_mib:.1f} MiB")
    assert bomb.stat().st_size < 1.1 * MB
    assert measured["error"] and "claim 1,073.7 MB uncompressed, over the 512 MB limit" in measured["error"]
    assert rise_mib < 64  # reading a 1 MB file and its zip directory; the tensor would be 1,024


# --- the app: one limit, logged refusals, an upload pool, session folders in the cache, a local tab icon ----------

@pytest.fixture
def public(monkeypatch, tmp_path, cache_dir):
    monkeypatch.setenv("NORMSCOPE_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("NORMSCOPE_PUBLIC", "1")
    return cache_dir


def access_lines(caplog) -> list[dict]:
    return [json.loads(r.message) for r in caplog.records if r.name == ACCESS]


def test_the_limit_is_one_number_of_mb_in_the_config_the_widget_and_the_checkpoints(public):
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    (uploader,) = open_page("models").get("file_uploader")
    assert MAX_CHECKPOINT_BYTES == config["server"]["maxUploadSize"] * MB == uploader.proto.max_upload_size_mb * MB
    assert "at most 512 MB" in uploader.proto.label and "MiB" not in uploader.proto.label


def test_streamlits_browser_side_counts_the_widgets_limit_in_mb():
    """Why the unit is MB: the browser refuses above ``maxUploadSizeMb`` x 1000^2 bytes (1024^2 only where
    ``navigator.platform`` is Windows), while Streamlit's server counts MiB. Read from the installed frontend."""
    import streamlit

    scripts = (Path(streamlit.__file__).parent / "static" / "static" / "js").glob("*.js")
    assert any(re.search(r"\?1024:1e3\b", p.read_text(errors="ignore")) for p in scripts), \
        "Streamlit's frontend no longer converts MB with 1000 (1024 on Windows): recheck MAX_CHECKPOINT_BYTES' unit"


def test_the_server_refuses_above_the_very_byte_the_browser_does(public, monkeypatch, caplog):
    monkeypatch.setattr("core.checkpoints.MAX_CHECKPOINT_BYTES", 2 * MB)
    at = open_page("models")
    limit = at.get("file_uploader")[0].proto.max_upload_size_mb * MB  # what the browser lets through
    assert limit == 2 * MB  # the widget follows the limit
    with caplog.at_level(logging.INFO, logger=ACCESS):
        at = upload(at, "at-the-limit.pt", bytes(limit))
        assert "not a checkpoint" in at.error[0].value  # read: not refused for its size
        at = upload(at, "over.pt", bytes(limit + 1))
    assert "2,000,001 bytes exceeds the limit of 2,000,000 bytes (2 MB)" in at.error[0].value
    at_limit, over = access_lines(caplog)
    assert "not a checkpoint" in at_limit["reason"]
    assert over["action"] == "upload refused" and over["file"] == "over" and "exceeds the limit" in over["reason"]


def test_every_refused_upload_is_logged_with_its_reason(public, monkeypatch, caplog, tmp_path):
    monkeypatch.setattr("core.checkpoints.MAX_CHECKPOINT_BYTES", 4 * MB)
    marker = tmp_path / "pwned"
    evil = io.BytesIO()
    pickle.dump(_Run(f"open({str(marker)!r}, 'w').close()"), evil, protocol=2)
    files = {"bomb.pt": (torch_zip_bomb(2 ** 22), "claim 16.8 MB uncompressed, over the 4 MB limit"),
             "evil.pt": (evil.getvalue(), "never run"), "notes.pt": (b"hello", "not a checkpoint")}
    at = open_page("models")
    for name, (data, _) in files.items():
        with caplog.at_level(logging.INFO, logger=ACCESS):
            at = upload(at, name, data)
    lines = access_lines(caplog)
    assert [line["action"] for line in lines] == ["upload refused"] * 3
    for line, (name, (data, reason)) in zip(lines, files.items()):
        assert line["file"] == Path(name).stem and line["bytes"] == len(data) and reason in line["reason"]
    assert not marker.exists() and not (public / "sessions").exists()  # nothing ran, no folder was made


class _Run:
    """A pickle that would run ``code`` when loaded (it never is)."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self):
        return exec, (self.code,)


def test_uploads_beyond_their_own_pool_are_asked_to_try_again_and_logged(public, zoo, caplog):
    good = (zoo / "builtin-vgg11-bn.safetensors").read_bytes()
    pool = serving._upload_slots(serving.UPLOAD_SLOTS)
    taken = [pool.try_take() for _ in range(serving.UPLOAD_SLOTS)]
    assert all(taken) and not pool.try_take()  # two other visitors' uploads are being read
    try:
        with caplog.at_level(logging.INFO, logger=ACCESS):
            at = upload(open_page("models"), "mine.safetensors", good)
    finally:
        for _ in taken:
            pool.give_back()
    (error,) = at.error
    assert "2 uploads are already being read on this public server" in error.value and "try again" in error.value
    assert not at.success and not (public / "sessions").exists()
    (line,) = access_lines(caplog)
    assert line["action"] == "upload refused" and line["file"] == "mine" and "try again" in line["reason"]


def test_session_uploads_live_in_the_cache_and_only_once_one_is_stored(public, zoo, monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "system-temp"))
    (tmp_path / "system-temp").mkdir()
    at = upload(open_page("models"), "notes.pt", b"hello")  # refused: no folder anywhere
    assert at.error and not (public / "sessions").exists()
    at = upload(at, "mine.safetensors", (zoo / "builtin-vgg11-bn.safetensors").read_bytes())
    assert "of this session" in at.success[0].value
    (folder,) = (public / "sessions").iterdir()
    assert folder.name == at.session_state["_uploads_token"]
    assert len(list(folder.glob("uploads/*-mine.safetensors"))) == 1
    assert not list((tmp_path / "system-temp").iterdir())


def test_a_reserved_session_folder_is_made_by_its_first_upload_and_swept_either_way(tmp_path, monkeypatch):
    monkeypatch.setenv("NORMSCOPE_CACHE", str(tmp_path / "cache"))
    uploads = serving.SessionUploads(grace=10)
    reserved, made = uploads.root("t1", "a", make=False), uploads.root("t2", "b")
    assert reserved == tmp_path / "cache" / "sessions" / "t1" and not reserved.exists() and made.is_dir()
    assert uploads.existing("t1") == reserved
    uploads.sweep(lambda _: False, now=0)
    assert sorted(uploads.sweep(lambda _: False, now=11)) == ["a", "b"] and not made.exists()
    left = uploads.root("t3", "c")
    uploads.delete_all()  # the server stops
    assert not left.exists() and uploads.existing("t3") is None


def test_the_tab_icon_is_a_file_this_server_serves(public, monkeypatch):
    """A ":material/...:" page icon makes the browser fetch its SVG from fonts.gstatic.com (Streamlit's frontend
    builds that URL); an emoji or an image file needs no network."""
    import streamlit as st

    icons = []
    real = st.set_page_config
    monkeypatch.setattr(st, "set_page_config", lambda **kw: (icons.append(kw.get("page_icon")), real(**kw))[1])
    open_page("overview")
    (icon,) = set(icons)
    assert not icon.startswith((":material", "http")) and Path(icon).is_file()
    assert Path(icon).read_bytes().startswith(b"\x89PNG") and Path(icon).is_relative_to(ROOT)
