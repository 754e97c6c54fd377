"""The precision probe: measured once per machine, and what it says follows what it measured."""
from __future__ import annotations

import pytest

import core.speed as speed


def test_the_probe_runs_once_per_machine_and_is_kept(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(speed, "training_rate", lambda precision, device: calls.append(precision) or
                        {"fp32": 100.0, "bf16": 10.0}[precision])
    first = speed.precision_speed(folder=tmp_path)
    again = speed.precision_speed(folder=tmp_path)
    assert first == again == {"fp32": 1.0, "bf16": 0.1} and calls == ["fp32", "bf16"]
    assert len(list((tmp_path / "probes").glob("precision-*.json"))) == 1


@pytest.mark.parametrize("ratio,says", [(0.1, "slower than fp32"), (1.0, "about as fast as fp32"),
                                        (1.8, "faster than fp32")])
def test_the_note_says_what_was_measured(monkeypatch, ratio, says):
    monkeypatch.setattr(speed, "precision_speed", lambda device=None: {"fp32": 1.0, "bf16": ratio})
    note = speed.speed_note("bf16")
    assert says in note and f"{ratio:.2g}x" in note
    assert speed.speed_note("fp32") == "fp32: the reference precision"


def test_a_real_probe_measures_both_precisions(tmp_path):
    measured = speed.precision_speed("cpu", folder=tmp_path)
    assert measured["fp32"] == 1.0 and measured["bf16"] > 0
