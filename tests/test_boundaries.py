"""Architecture boundaries: core is UI-free."""
from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import core

ROOT = Path(__file__).resolve().parents[1]


def test_core_never_imports_streamlit():
    modules = [m.name for m in pkgutil.walk_packages(core.__path__, "core.") if m.name != "core.__main__"]
    code = f"import sys, importlib\nfor m in {modules!r}: importlib.import_module(m)\n" \
           "assert 'streamlit' not in sys.modules, 'streamlit imported'\nassert 'plotly' not in sys.modules"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert not [p for p in (ROOT / "core").rglob("*.py") if "import streamlit" in p.read_text()]
