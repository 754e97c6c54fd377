"""The work limits of a public server: at most so much work per request, at most so many computations at once, and
at most so many of those from one client address."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

import streamlit as st

from core.experiments import WORK_UNIT
from core.serving import LimitExceeded
from ui.serving.access import client_address, log_access
from ui.serving.policy import policy


class Slots:
    """At most ``size`` computations at once in this server process, and a share of them per client (a
    non-blocking counting semaphore that counts each client's holds too)."""

    def __init__(self, size: int) -> None:
        self.size, self.taken, self._lock = size, 0, threading.Lock()
        self.held: dict[str, int] = {}

    def take(self, client: str = "", per_client: int | None = None) -> str | None:
        """Take a slot for ``client``; else which limit refused it: "client" (it holds ``per_client`` already) or
        "server" (all are taken). The client's share is checked first: its own tabs wait for it, not for others."""
        with self._lock:
            if per_client is not None and self.held.get(client, 0) >= per_client:
                return "client"
            if self.taken >= self.size:
                return "server"
            self.taken += 1
            self.held[client] = self.held.get(client, 0) + 1
            return None

    def try_take(self) -> bool:
        return self.take() is None

    def give_back(self, client: str = "") -> None:
        with self._lock:
            self.taken -= 1
            self.held[client] = self.held.get(client, 0) - 1
            if self.held[client] <= 0:
                del self.held[client]


@st.cache_resource(show_spinner=False)
def _slots(size: int) -> Slots:
    return Slots(size)


@contextmanager
def computation_slot(work: int) -> Iterator[None]:
    """Hold one of the server's computation slots for a request of ``work`` image passes of the reference model
    (:data:`WORK_UNIT`, core.cost); on a public server a request over the limits (its work, the server's slots, this
    client's share of them) raises :class:`LimitExceeded` (logged) before anything runs. A local server has none."""
    rules = policy()
    if not rules.public:
        yield
        return
    slots, client = _slots(rules.max_concurrent_computations), client_address()
    if work > rules.max_work_per_request:
        refuse(work, f"this asks for {work:,} {WORK_UNIT} (images x attack steps x each model's cost, summed over "
                     f"models), over this public server's limit of {rules.max_work_per_request:,} per request: select "
                     "fewer or smaller models, fewer images per class or fewer steps (the precomputed results show "
                     "without computing)")
    refused = slots.take(client, rules.max_computations_per_client)
    if refused == "client":
        refuse(work, f"{rules.max_computations_per_client} computation(s) of yours are already running on this "
                     "public server, its limit per visitor; wait for it to finish (another tab?), then ask again")
    if refused == "server":
        refuse(work, f"{slots.size} computation(s) are already running on this public server, its limit; try "
                     "again in a minute (precomputed results show without waiting)")
    try:
        yield
    finally:
        slots.give_back(client)


def refuse(work: int, reason: str) -> None:
    log_access("refused", work=work, reason=reason)
    raise LimitExceeded(reason)
