"""Scale-out on Ray: independent pieces of work (a zoo's trainings, a job's evaluations) spread over a cluster.

Optional: ``pip install -r requirements-ray.txt``. Configured by ``NORMSCOPE_RAY_ADDRESS`` (``local`` starts a Ray
instance on this machine with ``NORMSCOPE_RAY_CPUS`` CPUs, default all; ``auto`` joins the machine's running
cluster; ``ray://host:10001`` a remote one, through Ray Client: ``ray[client]``) or by a script's ``--ray ADDRESS``. Without it everything runs locally,
as before.

What the cluster must share: results are not sent back through Ray but written where the local run writes them, so
every worker must see the driver's paths: the result cache (``NORMSCOPE_CACHE``), the zoo's run folder and
checkpoints, the datasets (``NORMSCOPE_DATA``): one machine, or a shared file system mounted at the same path.
The environment variables that name them are passed to the workers.

Resumable: a task whose worker dies is retried (:data:`RETRIES` times) and a training resumes from its last
finished epoch (:mod:`core.train` writes its state after each), so the weights equal an uninterrupted run's. A
task asks for one GPU when it runs on CUDA, else for ``cpus`` CPUs.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Iterable, Iterator

from core.errors import NormScopeError

RETRIES = 3
SHARED_ENVIRONMENT = ("NORMSCOPE_CACHE", "NORMSCOPE_DATA", "NORMSCOPE_ZOO", "NORMSCOPE_CIFAR10_JPEG",
                      "NORMSCOPE_CIFAR10C", "NORMSCOPE_PER_CLASS", "ATEN_CPU_CAPABILITY", "PYTHONPATH")


class ClusterError(NormScopeError, RuntimeError):
    """Ray is configured but cannot be used (not installed, no cluster at the address)."""


def ray_address(environ=os.environ) -> str | None:
    return environ.get("NORMSCOPE_RAY_ADDRESS") or None


def _ray():
    try:
        import ray
    except ImportError:
        raise ClusterError("a Ray address is set but Ray is not installed: pip install -r requirements-ray.txt") \
            from None
    return ray


def connect(address: str, cpus: int | None = None) -> Any:
    """Ray, initialized once per process: ``local`` starts an instance here (``cpus`` CPUs), any other address
    joins that cluster. The workers get this project on their path and the shared folders' variables."""
    ray = _ray()
    if ray.is_initialized():
        return ray
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {name: os.environ[name] for name in SHARED_ENVIRONMENT if name in os.environ}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    local = address == "local"
    cpus = cpus or (int(os.environ["NORMSCOPE_RAY_CPUS"]) if "NORMSCOPE_RAY_CPUS" in os.environ else None)
    try:
        ray.init(address=None if local else address, num_cpus=cpus if local else None, include_dashboard=False,
                 runtime_env={"env_vars": env}, logging_level="WARNING", log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise ClusterError(f"cannot reach the Ray cluster at {address!r}: {e}") from None
    return ray


def map_on_cluster(fn: Callable, items: Iterable, address: str, *, cpus: float = 1, gpus: float = 0,
                   extra_args: tuple = (), extra_kwargs: dict | None = None) -> "Submitted":
    """``fn(item, *extra_args, **extra_kwargs)`` for every item as Ray tasks, all submitted before this returns
    (retried when their worker dies). ``fn`` must be importable by the workers (a module-level function of this
    project)."""
    ray = connect(address)
    task = ray.remote(max_retries=RETRIES, retry_exceptions=False, num_cpus=cpus, num_gpus=gpus)(fn)
    return Submitted(ray, [task.remote(item, *extra_args, **(extra_kwargs or {})) for item in items])


class Submitted:
    """Tasks on the cluster: iterate for their results as they finish; closed (or left as a context manager)
    before the end, the tasks still pending are cancelled, so no work goes on that nobody waits for."""

    def __init__(self, ray: Any, pending: list) -> None:
        self._ray, self._pending = ray, pending

    def __iter__(self) -> Iterator[Any]:
        return self.as_finished()

    def as_finished(self, tick: Callable[[], None] | None = None, every: float = 2.0) -> Iterator[Any]:
        """The results in the order they finish; ``tick`` is called every ``every`` seconds while none does (a
        job's cancel check raises from it)."""
        while self._pending:
            done, self._pending = self._ray.wait(self._pending, num_returns=1, timeout=every)
            if done:
                yield self._ray.get(done[0])
            elif tick:
                tick()

    def close(self) -> None:
        for ref in self._pending:
            self._ray.cancel(ref, force=True)
        self._pending = []

    def __enter__(self) -> "Submitted":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
