"""Job kinds of the tests of the job machinery: ``sleep`` steps through time, reporting progress. Declared here, not in
core: ``NORMSCOPE_JOB_MODULES`` (set in conftest.py) names this module, so the detached processes that run the tests'
jobs find the kind too."""
from __future__ import annotations

import time

from core.jobs import job_kind


@job_kind("sleep")
def sleep(params: dict, progress) -> dict:
    steps = int(params.get("steps", 10))
    for i in range(steps):
        time.sleep(float(params.get("seconds", 0.1)))
        progress((i + 1) / steps, f"step {i + 1}/{steps}")
    return {"steps": steps}
