"""The benchmark scripts start: their options parse (they run only by hand, so nothing else would notice)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p.name for p in (ROOT / "benchmarks").glob("*.py") if not p.name.startswith("_"))


@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_options_parse(script):
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--help"], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    assert r.returncode == 0 and "usage:" in r.stdout, r.stderr[-500:]


def test_gpu_script_is_valid_bash_and_refuses_an_unknown_part(tmp_path):
    assert subprocess.run(["bash", "-n", str(ROOT / "benchmarks" / "gpu.sh")]).returncode == 0
    r = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu.sh"), "nonsense", str(tmp_path / "log.md")],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert "unknown part nonsense" in r.stdout
