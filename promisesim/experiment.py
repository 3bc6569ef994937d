"""Running experiments: :func:`simulate`."""

from __future__ import annotations

import concurrent.futures
import contextlib
import math
from typing import Any

import numpy as np

from . import rollouts
from .cost import DEFAULT_MAX_EVENTS
from .cost import check as check_cost
from .cost import check_limit, offered_load
from .engines.base import Engine, Trace
from .engines.reference import ReferenceEngine
from .engines.vector import VectorEngine
from .errors import EngineError, ScenarioError
from .executors import _check_executor, _is_dask_client, execute
from .model.model import Model
from .model.spec import ModelSpec
from .random import Streams
from .results import Result

__all__ = ["simulate", "ENGINES", "get_engine"]

#: Engines by name. ``"auto"`` picks the fastest engine that supports the model.
ENGINES: dict[str, type] = {"reference": ReferenceEngine, "vector": VectorEngine}


def _slow_on_vector(spec: ModelSpec) -> str | None:
    """Why the vector engine would run ``spec`` slower than the reference engine, or None.

    An agent with a capacity ``limit`` or a ``slowdown`` whose requests call others (a
    super-agent's front with a concurrency cap, for one) is computed in passes, each
    guessing which requests it turns away; they settle in a few passes (a limited tandem
    at load 0.45: 6 passes, the vector engine 2.5x the reference engine at 4
    replications), but where the agent or one it calls is offered more work than it serves
    (:func:`~promisesim.cost.offered_load` of 1 or more) each pass settles only a few (a
    capped front over a two-server member at load 1.5: 1,697, 1,689, 1,684, ... wrong after
    each pass; the vector engine hands the run over after 3 passes, 0.15x the reference
    engine at 1 replication, 0.71x at 64).

    An autoscaler's decisions are a fixed point of whole vector runs, about one run per
    resize a round got wrong, yet the vector engine is the faster even at 1 replication
    (serverless image example, best of 2 side by side, reference against vector: 2.10 s
    against 1.14 s), so autoscalers are no reason.
    """
    calling = {p.promiser for p in spec.promises if p.conditions is not None}
    load = offered_load(spec)
    for a in spec.agents:
        if (a.limit is not None or a.slowdown) and a.name in calling:
            over = [b for b in [a.name, *_callees(spec, a.name)] if load[b] >= 1.0]
            if over:
                what = "a capacity limit" if a.limit is not None else "a slowdown"
                return (f"agent {a.name!r} has {what} and calls others, and {over[0]!r} is "
                        f"offered more work than it serves (load {load[over[0]]:.3g}): the "
                        "vector engine would settle its refusals a few per pass")
    return None


def _callees(spec: ModelSpec, agent: str) -> list[str]:
    """The agents ``agent``'s promises call, and those they call, and so on."""
    by_name = {p.name: p for p in spec.promises}
    seen: dict[str, None] = {}
    todo = [p for p in spec.promises if p.promiser == agent]
    while todo:
        p = todo.pop()
        for name in (p.conditions.promises() if p.conditions is not None else ()):
            callee = by_name[name]
            if callee.promiser not in seen and callee.promiser != agent:
                seen[callee.promiser] = None
                todo.append(callee)
    return list(seen)


def choose_engine(name: str, spec: ModelSpec) -> tuple[Engine, str]:
    """The engine for ``spec`` and why: ``"auto"`` picks the vector engine when it supports
    every feature of the model and is not known to be slower for it, else the reference
    engine; a named engine is that engine (an EngineError if it cannot run the model)."""
    if name == "auto":
        vector = ENGINES["vector"]()
        missing = vector.unsupported(spec)
        if missing:
            return ENGINES["reference"](), f"auto: the vector engine does not run {missing[0]}"
        slow = _slow_on_vector(spec)
        if slow is not None:
            return ENGINES["reference"](), f"auto: {slow}"
        return vector, "auto: the vector engine runs every feature of the model"
    return get_engine(name, spec), "asked for"


def get_engine(name: str, spec: ModelSpec) -> Engine:
    """The engine called ``name`` for ``spec``; ``"auto"`` picks one (see
    :func:`choose_engine`).

    Raises
    ------
    EngineError
        If the engine is unknown, or cannot run a feature of the model (the
        message names the features); there is never a silent fallback.
    """
    if name == "auto":
        return choose_engine(name, spec)[0]
    cls = ENGINES.get(name)
    if cls is None:
        raise EngineError(f"unknown engine {name!r}; known: {sorted(ENGINES) + ['auto']}")
    engine = cls()
    missing = engine.unsupported(spec)
    if missing:
        raise EngineError(f"engine {name!r} does not support: {', '.join(missing)}")
    return engine


def _as_spec(model: object) -> ModelSpec:
    """The validated spec of a Model (or a ModelSpec as it is)."""
    spec = model.spec() if isinstance(model, Model) else model
    if not isinstance(spec, ModelSpec):
        raise ScenarioError(f"model must be a Model or a ModelSpec, got {type(model).__name__}")
    return spec


def _check_horizon(horizon: object) -> float:
    if isinstance(horizon, bool) or not isinstance(horizon, (int, float, np.integer, np.floating)):
        raise ScenarioError(f"horizon={horizon!r} must be a number")
    h = float(horizon)
    if not math.isfinite(h) or h <= 0:
        raise ScenarioError(f"horizon={horizon!r} must be positive and finite")
    return h


def _is_terminal(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)  # sys.stderr is None under pythonw
    return bool(isatty is not None and isatty())


def _watched() -> bool:
    """Whether someone is watching this process's progress: stderr is a terminal, or it
    runs in a Jupyter kernel."""
    import sys

    return _is_terminal(sys.stderr) or "ipykernel" in sys.modules


def _progress_bar(total: int, name: str):  # type: ignore[no-untyped-def]
    """A bar of ``total`` replications (``tqdm.auto``: a widget in Jupyter, else text on
    stderr)."""
    import sys

    from tqdm.auto import tqdm

    return tqdm(total=total, unit="replication", desc=name, file=sys.stderr, leave=False)


def _run_block(task: tuple) -> Trace:
    """Run one block of replications in a worker process."""
    name, spec, horizon, streams, block, record, changes = task
    return rollouts.run(get_engine(name, spec), spec, horizon=horizon, streams=streams,
                        replications=block, record_requests=record, record_changes=changes)


def _blocks(executor: Any, workers: int) -> int:
    """How many blocks of replications to make for ``executor``: one per worker."""
    if _is_dask_client(executor):
        return max(1, sum(executor.nthreads().values()))
    if isinstance(executor, concurrent.futures.Executor):
        return max(1, int(getattr(executor, "_max_workers", workers) or workers))
    return workers


def _run_replications(chosen: Engine, spec: ModelSpec, horizon: float, streams: Streams,
                      reps: range, record_requests: bool, record_changes: bool,
                      executor: Any = "local", workers: int = 1, bar: Any = None) -> Trace:
    """Run replications ``reps`` on ``executor`` (checked) and return their trace, in
    replication order: the trace one process makes, whatever the executor."""
    n = len(reps)
    here = executor == "serial" or (executor == "local" and min(workers, n) == 1)
    if here and bar is None:
        return rollouts.run(chosen, spec, horizon=horizon, streams=streams, replications=reps,
                            record_requests=record_requests, record_changes=record_changes)
    if here:   # blocks of the engine's own batch size: the same results, shown
        size = max(1, chosen.batch_size(spec, horizon, record_requests))
        parts = []
        with bar:
            for start in range(reps.start, reps.stop, size):
                block = range(start, min(reps.stop, start + size))
                parts.append(rollouts.run(
                    chosen, spec, horizon=horizon, streams=streams, replications=block,
                    record_requests=record_requests, record_changes=record_changes))
                bar.update(len(block))
        return Trace.concat(parts)
    # contiguous blocks of replications, concatenated in order: the trace of one process
    count = min(n, _blocks(executor, workers))
    bounds = np.linspace(reps.start, reps.stop, count + 1).round().astype(int)
    blocks = [range(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    tasks = [(i, (chosen.name, spec, horizon, streams, block, record_requests, record_changes))
             for i, block in enumerate(blocks)]
    found: list[Trace | None] = [None] * len(blocks)

    def done(index: int, trace: Trace) -> None:
        found[index] = trace
        if bar is not None:
            bar.update(len(blocks[index]))

    with bar if bar is not None else contextlib.nullcontext():
        execute(_run_block, executor, workers, tasks, done, name="replications")
    return Trace.concat([t for t in found if t is not None])


def simulate(
    model: Model | ModelSpec,
    *,
    horizon: float,
    replications: int = 1,
    seed: int | np.random.SeedSequence | None = None,
    engine: str = "auto",
    record_requests: bool = True,
    record_changes: bool = True,
    workers: int = 1,
    progress: bool | None = None,
    max_events: float = DEFAULT_MAX_EVENTS,
    executor: Any = "local",
) -> Result:
    """Run independent replications of a model and return tidy results.

    Parameters
    ----------
    model : Model or ModelSpec
        The description to simulate. It is validated, not modified.
    horizon : float
        Simulated time per replication, in the model's time unit.
    replications : int
        Independent replications (at least 1).
    seed : int, numpy.random.SeedSequence or None
        Root entropy. Replication ``r`` draws from streams keyed
        ``(r, purpose, entity)``, so replication ``r`` is the same whatever
        ``replications`` is. ``None`` takes fresh entropy, recorded in the results.
    engine : str
        ``"reference"`` (SimPy, defines the semantics), ``"vector"`` (numpy,
        same results, much faster), or ``"auto"`` (the vector engine when it
        supports every feature of the model, else the reference engine; the
        choice is in ``Result.engine``).

    record_requests : bool
        Keep one record per request (``Result.requests``). ``False`` keeps only
        counts per (replication, promise, outcome), so memory does not grow
        with the traffic; every metric of ``Result.promises`` is still there.
    record_changes : bool
        Keep every change of state (needed by ``Result.intervals``, ``.events``,
        ``.causes``, ``.absorbed`` and ``.observations``). ``False`` keeps only the
        per-promise metrics, computed batch by batch as the run goes: with
        ``record_requests=False`` as well, memory does not grow with the horizon
        (``Result.promises`` and ``.summary()`` are identical either way).
    workers : int
        Processes to share the replications among (default 1: this process). The
        results are the same whatever the number: replication ``r`` draws only from
        its own streams. Scripts that use more than one need the usual
        ``if __name__ == "__main__":`` guard (processes start with ``forkserver``).
    executor : {"local", "serial", "dask"}, distributed.Client or concurrent.futures.Executor
        Where the replications run, as for :func:`promisesim.sweep`: ``"local"`` (default:
        this process, or ``workers`` local processes), ``"serial"``, ``"dask"`` (a local
        Dask cluster of ``workers`` processes), or a ``distributed.Client`` (an existing
        cluster, which may span machines: the replications are split into contiguous
        blocks, one per worker thread) or an executor object, left open. The results are
        identical whatever the executor and the number of workers.
    progress : bool or None
        A progress bar of replications done (``tqdm.auto``: a widget in Jupyter, text
        on a terminal's stderr). ``None`` (default): shown where someone is watching
        (a terminal's stderr, a Jupyter kernel); ``False``: never. The replications
        then run in blocks the size of the engine's own batches, with the same results.
    max_events : float
        The most events (requests, calls included, and changes of state, over all
        replications) the run may simulate, by an estimate made before it starts from
        the model's rates, intervals and sizes (see :mod:`promisesim.cost`). A run over
        it is refused with the estimate and the element that makes it large; raise it
        for a run that is meant to be that large. Request records that would not fit in
        a third of the machine's memory are refused too (``record_requests=False``).

    Returns
    -------
    Result
        ``.promises``, ``.intervals``, ``.events``, ``.requests`` and ``.summary()``;
        see :mod:`promisesim.results`.

    Raises
    ------
    ScenarioError
        If the model or the arguments are invalid.
    EngineError
        If the named engine cannot run the model.

    Examples
    --------
    >>> import promisesim as ps
    >>> m = ps.Model("one server", time_unit="h")
    >>> srv = m.agent("server", failures=ps.Failures(
    ...     time_to_failure=ps.Exponential(mean=100.0), time_to_repair=ps.Exponential(mean=1.0)))
    >>> up = m.promise(srv, to=m.agent("users"), body=ps.Availability(), name="up")
    >>> result = ps.simulate(m, horizon=10_000.0, replications=4, seed=1)
    >>> row = result.summary().set_index("metric").loc["kept_fraction"]
    >>> bool(0.98 < row["mean"] < 0.999)
    True
    """
    spec = _as_spec(model)
    horizon = _check_horizon(horizon)
    if isinstance(replications, bool) or not isinstance(replications, (int, np.integer)) or replications < 1:
        raise ScenarioError(f"replications={replications!r} must be a whole number of at least 1")
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ScenarioError(f"workers={workers!r} must be a whole number of at least 1")
    _check_executor(executor)
    for flag, value in (("record_requests", record_requests), ("record_changes", record_changes)):
        if not isinstance(value, (bool, np.bool_)):   # "no" would read as True
            raise ScenarioError(f"{flag}={value!r} must be True or False")
    if not spec.agents:
        raise ScenarioError(f"model {spec.name!r} has no agents: add one with Model.agent")
    probes = [o.name for o in spec.observers if o.probe]
    if probes and not record_requests:
        raise ScenarioError(f"observer {probes[0]!r} checks by sending requests (probe=True), "
                            "whose outcomes are read from the request records: simulate with "
                            "record_requests=True")
    check_cost(spec, horizon, int(replications), bool(record_requests),
               check_limit(max_events))
    streams = Streams(seed)
    chosen, reason = choose_engine(engine, spec)
    if progress is not None and not isinstance(progress, (bool, np.bool_)):
        raise ScenarioError(f"progress={progress!r} must be True, False or None")
    n = int(replications)
    watched = _watched() if progress is None else bool(progress)
    bar = _progress_bar(n, str(spec.name)) if watched and n > 1 else None
    trace = _run_replications(chosen, spec, horizon, streams, range(n), bool(record_requests),
                              bool(record_changes), executor, int(workers), bar)
    if trace.computed_by:
        reason = f"{reason}; the vector engine handed the run to {trace.computed_by}"
    return Result(spec, trace, horizon=horizon, replications=int(replications),
                  engine=trace.computed_by or chosen.name, entropy=streams.entropy,
                  spawn_key=tuple(streams.seed_sequence.spawn_key),
                  seed_sequence=streams.seed_sequence, engine_reason=reason)
