"""The work limits of a public server: at most so much work per request, at most so many computations at once."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

import streamlit as st

from core.experiments import WORK_UNIT
from core.serving import LimitExceeded
from ui.serving.access import log_access
from ui.serving.policy import policy


class Slots:
    """At most ``size`` computations at once in this server process (a non-blocking counting semaphore)."""

    def __init__(self, size: int) -> None:
        self.size, self.taken, self._lock = size, 0, threading.Lock()

    def try_take(self) -> bool:
        with self._lock:
            if self.taken >= self.size:
                return False
            self.taken += 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self.taken -= 1


@st.cache_resource(show_spinner=False)
def _slots(size: int) -> Slots:
    return Slots(size)


@contextmanager
def computation_slot(work: int) -> Iterator[None]:
    """Hold one of the server's computation slots for a request of ``work`` image passes (:data:`WORK_UNIT`); on a
    public server a request over the limits raises :class:`LimitExceeded` (logged) before anything runs. A local
    server has no limits."""
    rules = policy()
    if not rules.public:
        yield
        return
    slots = _slots(rules.max_concurrent_computations)
    if work > rules.max_work_per_request:
        refuse(work, f"this asks for {work:,} {WORK_UNIT} (images x attack steps, summed over models), over this "
                     f"public server's limit of {rules.max_work_per_request:,} per request: select fewer models, "
                     "fewer images per class or fewer steps (the precomputed results show without computing)")
    if not slots.try_take():
        refuse(work, f"{slots.size} computation(s) are already running on this public server, its limit; try "
                     "again in a minute (precomputed results show without waiting)")
    try:
        yield
    finally:
        slots.give_back()


def refuse(work: int, reason: str) -> None:
    log_access("refused", work=work, reason=reason)
    raise LimitExceeded(reason)
