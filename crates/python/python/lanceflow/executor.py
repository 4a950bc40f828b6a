"""The Ray executor: schedules, retries and collects lanceflow tasks on Ray.

It holds no operation logic. The driver (Rust, inside ``_native.run_cli``)
plans against one pinned dataset version and commits once; this class only
moves task JSON to Ray workers, runs ``_native.execute_task`` there and hands
each outcome back. Tasks never commit, so running one again after a worker
died is always safe.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import deque
from typing import Any, Callable, Dict, List, Optional

from . import _native, errors


class _Worker:
    """A long-lived Ray actor that executes any lanceflow task.

    The engine caches per process what is expensive to build (the embedding
    model, object-store clients), so a warm actor runs its next task, of any
    operation, without reloading. Actors, rather than one Ray task per
    lanceflow task, also keep the resources the pool holds (``num_cpus``) from
    starving tasks of a later stage.
    """

    def execute(self, spec_json: str) -> str:
        from lanceflow import _native as native

        return native.execute_task(spec_json)

    def pid(self) -> int:
        return os.getpid()


def _system_errors() -> tuple:
    """Ray failures of the worker, not of the task: the task is re-run."""
    import ray.exceptions as rex

    names = (
        "RayActorError",
        "ActorDiedError",
        "ActorUnavailableError",
        "WorkerCrashedError",
        "NodeDiedError",
        "ObjectLostError",
        "OwnerDiedError",
        "RaySystemError",
        "LocalRayletDiedError",
        "TaskUnschedulableError",
        "OutOfMemoryError",
    )
    return tuple(getattr(rex, n) for n in names if hasattr(rex, n))


class RayExecutor:
    """Run lanceflow tasks on a Ray cluster.

    Parameters
    ----------
    address:
        Ray cluster to join (``None``: ``RAY_ADDRESS``, else a running local
        cluster, else a new local instance). Ignored when Ray is already
        initialised in this process.
    num_workers:
        Tasks in flight at once. ``None`` derives it from the live cluster
        (its CPUs divided by ``num_cpus`` per task), like lance-ray's
        ``init_ray_config``.
    ray_remote_args:
        Options for every worker actor (``num_cpus``, ``memory``,
        ``resources``, ``scheduling_strategy``...). Default ``{"num_cpus": 1}``.
    max_retries:
        Times a task is run again after its worker died, it ran past
        ``task_timeout``, or it failed with a retryable error (storage hiccup,
        commit conflict).
    task_timeout:
        Seconds one attempt of a task may run (default 7200; ``None``: no
        limit). A worker past it is killed and the task run again: a hung
        worker cannot stall the job.
    retry_backoff:
        Seconds before the first re-run of a task; each further re-run of it
        waits twice as long (at most 60 s), with jitter, so a struggling store
        or node is not hammered.
    actor_pool_min, actor_pool_max:
        Size of the pool of worker actors that run the tasks (each loads the
        embedding model at most once). The pool grows on demand up to ``max``
        (default ``num_workers``) and keeps ``min`` warm actors between calls
        (each holds its ``num_cpus``; set ``min`` to ``num_workers`` for the
        lowest search latency, 0 to hold nothing between calls).
    verbose:
        Print the chosen configuration on stderr.
    """

    def __init__(
        self,
        address: Optional[str] = None,
        num_workers: Optional[int] = None,
        ray_remote_args: Optional[Dict[str, Any]] = None,
        max_retries: int = 3,
        task_timeout: Optional[float] = 7200.0,
        retry_backoff: float = 0.5,
        actor_pool_min: int = 1,
        actor_pool_max: Optional[int] = None,
        verbose: bool = True,
    ) -> None:
        if num_workers is not None and (isinstance(num_workers, bool) or int(num_workers) < 1):
            raise errors.InvalidInputError(f"num_workers must be at least 1, not {num_workers!r}")
        import ray

        if not ray.is_initialized():
            ray.init(address=address, ignore_reinit_error=True, logging_level="warning")
        self._ray = ray
        self.ray_remote_args = dict(ray_remote_args or {"num_cpus": 1})
        resources = ray.cluster_resources()
        cpus = float(resources.get("CPU", 1.0))
        per_task = float(self.ray_remote_args.get("num_cpus", 1) or 1)
        chosen = num_workers if num_workers is not None else max(1, int(cpus // per_task))
        if chosen < 1:
            raise errors.InvalidInputError("num_workers must be at least 1")
        self.num_workers = int(chosen)
        self.max_retries = max(0, int(max_retries))
        if task_timeout is not None and not (0 < float(task_timeout) <= 7 * 86400):
            raise errors.InvalidInputError(
                f"task_timeout must be between 0 and 604800 seconds (or None), not {task_timeout}"
            )
        self.task_timeout = None if task_timeout is None else float(task_timeout)
        if not (0 <= float(retry_backoff) <= 60):
            raise errors.InvalidInputError(
                f"retry_backoff must be between 0 and 60 seconds, not {retry_backoff}"
            )
        self.retry_backoff = float(retry_backoff)
        self.actor_pool_min = max(0, int(actor_pool_min))
        self.actor_pool_max = max(1, int(actor_pool_max or self.num_workers))
        if self.actor_pool_min > self.actor_pool_max:
            raise errors.InvalidInputError(
                f"actor_pool_min ({self.actor_pool_min}) exceeds actor_pool_max "
                f"({self.actor_pool_max})"
            )
        memory = float(resources.get("memory", 0.0))
        self.memory_per_worker = int(memory / self.num_workers) if memory else None
        self._actor_cls = ray.remote(_Worker).options(
            max_restarts=0, max_task_retries=0, **self.ray_remote_args
        )
        self._actors: List[Any] = []
        self._ready: set = set()  # keys of actors that have started
        self._starting: Dict[Any, Any] = {}  # readiness ref -> actor
        self.task_overheads: List[float] = []
        if verbose:
            mem = (
                f", ~{self.memory_per_worker / 2**30:.1f} GiB memory per worker"
                if self.memory_per_worker
                else ""
            )
            print(
                f"lanceflow: Ray executor with {self.num_workers} worker(s) "
                f"(cluster: {cpus:g} CPU, {len(ray.nodes())} node(s){mem}), "
                f"actor pool {self.actor_pool_min}..{self.actor_pool_max}, "
                f"max_retries {self.max_retries}, task_timeout {self.task_timeout}, "
                f"task options {self.ray_remote_args}",
                file=sys.stderr,
            )

    # -- the contract the Rust driver calls ---------------------------------

    def parallelism(self) -> int:
        return self.num_workers

    def describe(self) -> str:
        return f"ray({self.num_workers} workers)"

    def run(self, stage: str, tasks: List[str], sink: Any) -> None:
        """Run every task of one stage; report each outcome to ``sink``."""
        ray = self._ray
        system_errors = _system_errors()
        queue = deque((i, 1) for i in range(len(tasks)))
        delayed: List[tuple] = []  # (due, task index, attempt): re-runs after a backoff
        pending: Dict[Any, tuple] = {}  # ref -> (task index, attempt, actor, submitted)
        # Tasks go only to actors that have started: an actor the cluster
        # cannot place yet (no free CPU after a node died) must not hold one.
        idle = [a for a in self._actors if _key(a) in self._ready]
        started = {i: time.monotonic() for i in range(len(tasks))}
        start_failures = 0

        def grow() -> None:
            want = min(self.actor_pool_max, max(self.actor_pool_min, len(queue) + len(pending)))
            while len(self._actors) < want:
                actor = self._actor_cls.remote()
                self._actors.append(actor)
                self._starting[actor.pid.remote()] = actor

        def finish(i: int, attempt: int, outcome: Dict[str, Any]) -> None:
            outcome["attempts"] = attempt
            outcome["seconds"] = time.monotonic() - started[i]
            sink.send(json.dumps(outcome))

        def again(i: int, attempt: int) -> None:
            """Run task ``i`` again after its backoff (attempt is the next one)."""
            wait = _backoff(self.retry_backoff, attempt - 1)
            delayed.append((time.monotonic() + wait, i, attempt))

        while queue or pending or delayed:
            now = time.monotonic()
            for item in [d for d in delayed if d[0] <= now]:
                delayed.remove(item)
                queue.append((item[1], item[2]))
            if sink.cancelled():
                # Stop the work in flight: the busy actors go (tasks never
                # commit, so nothing half-done can land).
                for _, _, actor, _ in pending.values():
                    self._discard(actor)
                return
            grow()
            while queue and idle and len(pending) < self.num_workers:
                i, attempt = queue.popleft()
                actor = idle.pop()
                pending[actor.execute.remote(tasks[i])] = (i, attempt, actor, time.monotonic())
            waiting = list(pending) + list(self._starting)
            if not waiting:
                if delayed and not queue:
                    time.sleep(max(0.0, min(d[0] for d in delayed) - time.monotonic()))
                    continue
                raise errors.InternalError("no worker actor could be started")
            ready, _ = ray.wait(waiting, num_returns=1, timeout=0.1)
            if self.task_timeout is not None:
                for ref, (i, attempt, actor, submitted) in list(pending.items()):
                    if ref in ready or time.monotonic() - submitted <= self.task_timeout:
                        continue
                    # A hung or far too slow worker: it goes, the task is re-run.
                    del pending[ref]
                    self._discard(actor)
                    if attempt <= self.max_retries:
                        print(
                            f"lanceflow: task {i} of '{stage}' ran past task_timeout "
                            f"({self.task_timeout:g} s); running it again (attempt {attempt + 1})",
                            file=sys.stderr,
                        )
                        again(i, attempt + 1)
                    else:
                        finish(i, attempt, _failed(tasks[i], "storage", _timed_out(self.task_timeout, attempt)))
            for ref in ready:
                if ref in self._starting:
                    actor = self._starting.pop(ref)
                    try:
                        ray.get(ref)
                    except Exception as err:
                        self._discard(actor)
                        start_failures += 1
                        if start_failures > 3 * self.actor_pool_max:
                            raise errors.StorageError(
                                f"lanceflow worker actors fail to start ({err}); is the "
                                "lanceflow wheel installed on every node?"
                            ) from err
                    else:
                        self._ready.add(_key(actor))
                        idle.append(actor)
                    continue
                i, attempt, actor, submitted = pending.pop(ref)
                try:
                    text = ray.get(ref)
                except system_errors as err:
                    self._discard(actor)
                    if attempt <= self.max_retries:
                        print(
                            f"lanceflow: task {i} of '{stage}' lost its worker "
                            f"({type(err).__name__}); running it again "
                            f"(attempt {attempt + 1})",
                            file=sys.stderr,
                        )
                        again(i, attempt + 1)
                    else:
                        finish(i, attempt, _failed(tasks[i], "storage", _lost(err, attempt)))
                    continue
                except Exception as err:  # the task itself raised: not retryable
                    idle.append(actor)
                    finish(i, attempt, _failed(tasks[i], "internal", str(err)))
                    continue
                idle.append(actor)
                outcome = json.loads(text)
                self.task_overheads.append(
                    max(0.0, time.monotonic() - submitted - float(outcome.get("seconds", 0.0)))
                )
                error = outcome.get("result", {}).get("Err")
                if error and _native.is_retryable(error["kind"]) and attempt <= self.max_retries:
                    again(i, attempt + 1)
                    continue
                finish(i, attempt, outcome)
        self._shrink()

    def _shrink(self) -> None:
        """Between stages the pool keeps ``actor_pool_min`` warm actors: each
        holds its ``num_cpus``, which Ray Data and other jobs need too."""
        for actor in list(self._starting.values()):
            if len(self._actors) <= self.actor_pool_min:
                return
            self._discard(actor)
        for actor in list(self._actors):
            if len(self._actors) <= self.actor_pool_min:
                return
            self._discard(actor)

    # -- actor pool ----------------------------------------------------------

    def _discard(self, actor: Any) -> None:
        self._actors = [a for a in self._actors if _key(a) != _key(actor)]
        self._ready.discard(_key(actor))
        self._starting = {r: a for r, a in self._starting.items() if _key(a) != _key(actor)}
        try:
            self._ray.kill(actor)
        except Exception:
            pass

    def shutdown(self) -> None:
        """Stop the actor pool (models are released)."""
        for actor in list(self._actors):
            self._discard(actor)


def _key(actor: Any) -> str:
    return actor._actor_id.hex()


def _lost(err: BaseException, attempts: int) -> str:
    return (
        f"the task's Ray worker was lost {attempts} time(s) ({type(err).__name__}: "
        f"{str(err).splitlines()[0] if str(err) else ''}); raise max_retries or check the "
        "cluster's nodes"
    )


def _timed_out(timeout: float, attempts: int) -> str:
    return (
        f"the task ran past task_timeout ({timeout:g} s) {attempts} time(s); raise "
        "task_timeout, or look for a hung worker or an unreachable store"
    )


def _backoff(base: float, retry: int) -> float:
    """Seconds before re-run number ``retry`` (1, 2, ...): exponential from
    ``base``, capped at 60 s, with up to 50% jitter so re-runs spread out."""
    import random

    if base <= 0:
        return 0.0
    wait = min(60.0, base * 2 ** max(0, retry - 1))
    return wait * (0.5 + random.random() / 2)


def _failed(spec_json: str, kind: str, message: str) -> Dict[str, Any]:
    spec = json.loads(spec_json)
    return {
        "index": spec["index"],
        "label": spec.get("label", ""),
        "result": {"Err": {"kind": kind, "message": message}},
        "attempts": 1,
        "seconds": 0.0,
    }


def executor_factory(
    executor: Any = None, **options: Any
) -> Callable[[Optional[str], Optional[int]], Any]:
    """A factory for ``_native.run_cli``: returns ``executor`` if given, else
    a new :class:`RayExecutor` for the CLI's ``--ray-address``/``--workers``."""

    def make(address: Optional[str], workers: Optional[int]) -> Any:
        if executor is not None:
            return executor
        return RayExecutor(address=address, num_workers=workers, **options)

    return make

