"""Why promises broke: state-based and request-based attribution of a :class:`~promisesim.Result`.

State-based (:func:`causes`, :func:`cause_summary`, :func:`absorbed`): each
break of a promise's standing over time, followed down its broken conditions
to the agents down at the bottom.

Request-based (:func:`request_causes`, :func:`request_cause_summary`): each
root request that was not kept, followed down its call tree to the calls that
failed it and how: an error answer, a late one, a provider down (or crashed
with the request inside), a rejection at a capacity limit, a partition. This
sees what breaks requests while every agent stays up (errors, brownouts,
partitions, queues under load).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .engines.base import (BREAKER_OPEN, CONDITION_FAILED, DEGRADED, ERROR, KEPT, LATE, LOST, OUTCOMES, PARTITIONED,
                           PROMISER_DOWN, REJECTED, UNFINISHED)
from .model.promises import Condition

__all__ = ["causes", "cause_summary", "absorbed", "request_causes", "request_cause_summary",
           "request_absorbed"]


def _distinct_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of a boolean matrix (at least one column) in lexicographic order,
    as ``np.unique(matrix, axis=0)`` orders them: the index of each one's first occurrence,
    and for each row the position of its distinct row. Rows are compared packed into bytes
    (first column the most significant bit), which is faster."""
    packed = np.ascontiguousarray(np.packbits(matrix, axis=1))
    keys = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return first, inverse.ravel()


def _row_texts(matrix: np.ndarray, names: list[str]) -> np.ndarray:
    """For each row of a boolean matrix, the names of its true columns joined by ", " (an
    object array of str), built once per distinct row."""
    rows, columns = matrix.shape
    out = np.empty(rows, dtype=object)
    if rows == 0 or columns == 0:
        out[:] = ""
        return out
    first, inverse = _distinct_rows(matrix)
    texts = np.empty(first.size, dtype=object)
    texts[:] = [", ".join(names[j] for j in np.flatnonzero(matrix[i]).tolist())
                for i in first.tolist()]
    return texts[inverse]


def _blame(result, cond: Condition, rep: np.ndarray, t: np.ndarray
           ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Whether ``cond`` holds at each (rep, t), and where it does not, which of its
    promises to blame: the broken items of every (sub)condition that fails. A broken
    provider that a choice (any-of, or k-of with enough others) covered is not blamed."""
    items = []
    for item in cond.items:
        if isinstance(item, Condition):
            items.append((item, *_blame(result, item, rep, t)))
        else:
            ok = result._promise_timelines[result.spec.promise_index[item]].value_at(rep, t)
            items.append((item, ok, None))
    if cond.rule == "split":
        items = [(item, ok | cond.idle(j, t), sub) for j, (item, ok, sub) in enumerate(items)]
    count = np.zeros(t.size, dtype=np.int64)
    for _, ok, _ in items:
        count += ok
    holds = count >= cond.k
    blamed: dict[str, np.ndarray] = {}
    for item, ok, sub in items:
        failing = ~holds & ~ok
        parts = sub.items() if sub is not None else [(item, np.ones(t.size, dtype=bool))]
        for name, mask in parts:
            blamed[name] = blamed.get(name, np.zeros(t.size, dtype=bool)) | (mask & failing)
    return holds, blamed

def _links(result, p, rep: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, list[str], np.ndarray]:  # type: ignore[no-untyped-def]
    """For breaks of ``p`` at (rep, t): promiser down, the condition promises in model
    order, and a matrix (breaks x those promises) of the ones to blame."""
    down = ~result._agent_timelines[result.spec.agent_index[p.promiser]].value_at(rep, t)
    names = list(dict.fromkeys(p.conditions.promises())) if p.conditions is not None else []
    matrix = np.zeros((t.size, len(names)), dtype=bool)
    if names:
        _, blamed = _blame(result, p.conditions, rep, t)
        for j, name in enumerate(names):
            matrix[:, j] = blamed.get(name, False)
    matrix[down] = False
    return down, names, matrix

def _roots(result, promise: int, rep: np.ndarray, t: np.ndarray,
           links: tuple[np.ndarray, list[str], np.ndarray] | None = None) -> np.ndarray:
    """Agents at the root of a promise's break at each (rep, t): a boolean matrix
    (breaks x agents). Follows broken links: the promiser if it is down, else the roots of
    every broken condition promise. ``links``: :meth:`_links` of the promise there, if
    known."""
    spec = result.spec
    p = spec.promises[promise]
    out = np.zeros((t.size, len(spec.agents)), dtype=bool)
    down, names, matrix = _links(result, p, rep, t) if links is None else links
    out[down, spec.agent_index[p.promiser]] = True
    for j, name in enumerate(names):
        blamed = matrix[:, j]
        if blamed.any():
            out[blamed] |= _roots(result, spec.promise_index[name], rep[blamed], t[blamed])
    return out

def causes(result: Any) -> pd.DataFrame:
    """One row per break of a promise: when it began, how long it lasted, its first
    failing link and its root causes.

    ``first_link`` is ``"promiser"`` when the promiser itself was down, else the
    condition promises to blame at that instant (broken ones a choice could not cover);
    ``root_causes`` lists the agents down at the bottom of that chain of links (a
    promise can break because several providers of a choice are down at once).
    """
    spec, horizon = result.spec, result.horizon
    names = [a.name for a in spec.agents]
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("rep", "promise", "start", "end",
                                                          "first_link", "root_causes")}
    for index, (p, timeline) in enumerate(zip(spec.promises, result._promise_timelines)):
        rep, start, end, value = timeline.segments(horizon)
        broken = ~value
        rep, start, end = rep[broken], start[broken], end[broken]
        if rep.size == 0:
            continue
        links = _links(result, p, rep, start)
        promiser_down, conds, matrix = links
        roots = _roots(result, index, rep, start, links)
        parts["rep"].append(rep)
        parts["promise"].append(np.full(rep.size, index, dtype=np.int64))
        parts["start"].append(start)
        parts["end"].append(end)
        parts["first_link"].append(np.where(promiser_down, "promiser", _row_texts(matrix, conds)))
        parts["root_causes"].append(_row_texts(roots, names))
    empty = {"rep": np.int64, "promise": np.int64, "start": float, "end": float,
             "first_link": object, "root_causes": object}
    rep, promise, start, end, first_link, root_causes = (
        np.concatenate(parts[k]) if parts[k] else np.empty(0, dtype=empty[k]) for k in empty)
    order = np.lexsort((start, rep))   # stable: promises in model order at equal instants
    start, end = start[order], end[order]
    frame = pd.DataFrame({
        "replication": rep[order].astype(np.int32),
        "promise": pd.Categorical.from_codes(promise[order],
                                             categories=[p.name for p in spec.promises]),
        "start": start, "duration": end - start, "ended": end < horizon,
        "first_link": first_link[order], "root_causes": root_causes[order],
    })
    frame.attrs.update(result.attrs)
    return frame

def cause_summary(result: Any) -> pd.DataFrame:
    """Per promise and root cause: breaks, total broken time and its share of the promise's
    broken time, over every replication, largest first within each promise."""
    causes = result.causes
    grouped = causes.groupby(["promise", "root_causes"], observed=True, sort=False)
    table = grouped.agg(breaks=("start", "size"), broken_time=("duration", "sum")).reset_index()
    totals = table.groupby("promise", observed=True)["broken_time"].transform("sum")
    table["share_of_broken_time"] = table["broken_time"] / totals
    table = table.sort_values(["promise", "broken_time"], ascending=[True, False], kind="stable",
                              ignore_index=True)
    table.attrs.update(result.attrs)
    return table

def absorbed(result: Any) -> pd.DataFrame:
    """Upstream breaks a choice absorbed: per (replication, promise, condition), how many
    breaks of the condition promise began while the promise itself stayed standing."""
    spec = result.spec
    rows = []
    for index, p in enumerate(spec.promises):
        if p.conditions is None:
            continue
        mine = result._promise_timelines[index]
        for name in dict.fromkeys(p.conditions.promises()):
            upstream = result._promise_timelines[spec.promise_index[name]]
            breaks = ~upstream.value
            rep, t = upstream.rep[breaks], upstream.time[breaks]
            if rep.size == 0:
                continue
            held = mine.value_at(rep, t)
            counts = np.bincount(rep[held], minlength=result.replications)
            total = np.bincount(rep, minlength=result.replications)
            for r in range(result.replications):
                rows.append((r, p.name, name, int(total[r]), int(counts[r])))
    frame = pd.DataFrame(rows, columns=["replication", "promise", "condition", "upstream_breaks",
                                        "absorbed"])
    frame.attrs.update(result.attrs)
    return frame


#: Causes of broken requests, by the outcome of the record blamed.
_REQUEST_CAUSES = {ERROR: "errors", LATE: "late", PROMISER_DOWN: "down", LOST: "down",
                   REJECTED: "rejected", PARTITIONED: "partitioned", BREAKER_OPEN: "breaker"}
#: By outcome: whether a root request with it failed by itself (not through its calls).
_FAILED_ITSELF = np.array([o in (ERROR, PROMISER_DOWN, LOST, REJECTED, PARTITIONED, BREAKER_OPEN)
                           for o in range(len(OUTCOMES))])
_CAUSE_LABELS = ["errors", "late", "down", "rejected", "partitioned", "condition", "timeout",
                  "breaker"]
#: By outcome: the code of its cause in :data:`_CAUSE_LABELS` (others: "condition").
_CAUSE_OF = np.array([_CAUSE_LABELS.index(_REQUEST_CAUSES.get(o, "condition"))
                      for o in range(len(OUTCOMES))], dtype=np.int64)


def _callers(spec: Any) -> np.ndarray:
    """Per (workload, promise): the promise that calls it in that workload's call tree (-1:
    not called there; -2: called by several, or more than once)."""
    out = np.full((len(spec.workloads), len(spec.promises)), -1, dtype=np.int64)

    def walk(w: int, caller: int, item: Any) -> None:
        if hasattr(item, "items"):   # a condition: its items are called by the same promise
            for sub in item.items:
                walk(w, caller, sub)
            return
        out[w, item.promise] = caller if out[w, item.promise] == -1 else -2
        if item.condition is not None:
            walk(w, item.promise, item.condition)

    for w, tree in enumerate(spec.call_trees):
        if tree.condition is not None:
            walk(w, tree.promise, tree.condition)
    return out


def _caller_timeouts(spec: Any) -> np.ndarray:
    """Per (workload, promise): the timeout of the promise that calls it in that workload's
    call tree (inf: none, not called there, or called by several)."""
    timeouts = np.array([np.inf if p.timeout is None else p.timeout for p in spec.promises] + [np.inf])
    return timeouts[_callers(spec)]   # (-1 and -2 read the last: inf)


def request_causes(result: Any) -> pd.DataFrame:
    """One row per cause of each root request (a workload's arrival) that was not kept.

    The causes of a broken request are found in its call tree (every record with its
    replication, workload and arrival index):

    * a root request that failed itself (an error answer, its promiser down or crashed,
      rejected at a limit, cut off by a partition, failed fast by its caller's open
      breaker: ``"breaker"``) is its own cause;
    * a late root request is blamed on the calls under it answered late, or, if none
      was, on its own promiser (its queue and work);
    * a root request whose condition failed is blamed on the calls under it that failed
      other than by lateness, else on those its caller gave up on (``"timeout"``: a call
      whose provider took longer than the caller's timeout, judged by the provider's
      response time), else on those answered late (a caller that fails on late answers),
      else on its promiser's condition itself (``"condition"``: an availability
      condition, or a choice with no provider believed up).

    Columns: ``replication``, ``promise``, ``workload``, ``index``, ``arrival`` and
    ``outcome`` of the root request; ``agent`` (the promiser of the record blamed),
    ``cause`` (``errors``, ``late``, ``down``, ``rejected``, ``partitioned``,
    ``breaker``, ``timeout`` or ``condition``) and ``weight`` (1 over the request's number of causes, so each broken
    request counts once). Requests still unfinished at the horizon are left out, and so are
    degraded ones (kept, by a fallback: :attr:`~promisesim.Result.request_absorbed` counts
    the failed calls behind them).
    """
    spec = result.spec
    req = result.trace.requests
    if req is None:
        raise ValueError("request causes need the requests: run simulate(..., "
                         "record_requests=True)")
    order = np.lexsort((req["index"], req["workload"], req["replication"]))
    rep, promise, workload, index, arrival, outcome, latency = (
        req[k][order] for k in ("replication", "promise", "workload", "index", "arrival", "outcome",
                                "latency"))
    n = rep.size
    first = np.ones(n, dtype=bool)
    first[1:] = (rep[1:] != rep[:-1]) | (workload[1:] != workload[:-1]) | (index[1:] != index[:-1])
    group = np.cumsum(first) - 1
    roots = np.array([tree.promise for tree in spec.call_trees], dtype=np.int64)
    is_root = promise == roots[workload] if n else np.zeros(0, dtype=bool)
    root_of = np.full(int(group[-1]) + 1 if n else 0, -1, dtype=np.int64)
    root_of[group[is_root]] = np.flatnonzero(is_root)
    root_outcome = outcome[root_of[group]]
    broken = ~np.isin(root_outcome, [KEPT, DEGRADED, UNFINISHED])   # degraded: kept, by a fallback
    failing = np.isin(outcome, list(_REQUEST_CAUSES))     # the records that failed themselves
    below = failing & ~is_root & broken
    # calls their caller gave up on: not answered within its timeout (if it has one)
    tau = _caller_timeouts(spec)[workload, promise] if n else np.zeros(0)
    timed_out = (~is_root & broken & np.isfinite(tau) & ~(latency <= tau)
                 & np.isin(outcome, [KEPT, LATE, UNFINISHED]))
    late_below = below & (outcome == LATE) & ~timed_out
    other_below = below & (outcome != LATE)
    n_groups = root_of.size
    has_late = np.bincount(group[late_below], minlength=n_groups) > 0
    has_other = np.bincount(group[other_below], minlength=n_groups) > 0
    has_timeout = np.bincount(group[timed_out], minlength=n_groups) > 0
    g_root = root_outcome   # per record: its root's outcome
    itself = _FAILED_ITSELF[g_root]
    blamed = np.zeros(n, dtype=bool)
    # a root that failed itself
    blamed |= is_root & broken & itself
    # a late root: the late calls under it, else itself
    late_root = broken & (g_root == LATE)
    blamed |= late_root & late_below
    blamed |= late_root & is_root & ~has_late[group]
    # a failed condition: other failures under it, else calls given up on, else late ones,
    # else the condition itself
    cond_root = broken & (g_root == CONDITION_FAILED)
    blamed |= cond_root & other_below
    gave_up = cond_root & timed_out & ~has_other[group]
    blamed |= gave_up
    blamed |= cond_root & late_below & ~has_other[group] & ~has_timeout[group]
    bare = cond_root & is_root & ~has_other[group] & ~has_late[group] & ~has_timeout[group]
    blamed |= bare
    at = np.flatnonzero(blamed)
    g = group[at]
    count = np.bincount(g, minlength=n_groups)
    root = root_of[g]
    cause_codes = np.where(bare[at], _CAUSE_LABELS.index("condition"),
                           np.where(gave_up[at], _CAUSE_LABELS.index("timeout"),
                                    _CAUSE_OF[outcome[at]]))
    promiser = np.array([spec.agent_index[p.promiser] for p in spec.promises], dtype=np.int64)
    frame = pd.DataFrame({
        "replication": rep[root].astype(np.int32),
        "promise": pd.Categorical.from_codes(promise[root], categories=[p.name for p in spec.promises]),
        "workload": pd.Categorical.from_codes(workload[root],
                                              categories=[w.label for w in spec.workloads]),
        "index": index[root],
        "arrival": arrival[root],
        "outcome": pd.Categorical.from_codes(outcome[root].astype(np.int64), categories=list(OUTCOMES)),
        "agent": pd.Categorical.from_codes(promiser[promise[at]],
                                           categories=[a.name for a in spec.agents]),
        "cause": pd.Categorical.from_codes(cause_codes, categories=_CAUSE_LABELS),
        "weight": 1.0 / count[g],
    })
    frame.attrs.update(result.attrs)
    return frame


def request_absorbed(result: Any) -> pd.DataFrame:
    """Failed calls their callers absorbed: per (replication, promise, condition), how many
    calls of the promise's requests to the condition promise failed (from the caller's
    view: not answered, an error, late where the caller fails on late answers, or not back
    within its timeout) and how many of those the caller's request was kept despite (a
    k-of-n condition that got its k answers elsewhere, or a fallback). Calls whose request or caller was
    unfinished at the horizon are left out, as are promises called more than once in one
    call tree (which of their records a caller made is not in the table).
    """
    spec = result.spec
    req = result.trace.requests
    if req is None:
        raise ValueError("absorbed calls need the requests: run simulate(..., "
                         "record_requests=True)")
    order = np.lexsort((req["promise"], req["index"], req["workload"], req["replication"]))
    rep, promise, workload, index, outcome, latency = (
        req[k][order] for k in ("replication", "promise", "workload", "index", "outcome",
                                "latency"))
    n_p = len(spec.promises)
    caller = _callers(spec)[workload, promise] if rep.size else np.zeros(0, dtype=np.int64)
    first = np.ones(rep.size, dtype=bool)
    first[1:] = (rep[1:] != rep[:-1]) | (workload[1:] != workload[:-1]) | (index[1:] != index[:-1])
    group = np.cumsum(first) - 1
    key = group * n_p + promise                 # sorted: records by (request, promise)
    called = np.flatnonzero(caller >= 0)
    at = np.searchsorted(key, group[called] * n_p + caller[called])
    found = at < key.size
    found[found] = key[at[found]] == group[called[found]] * n_p + caller[called[found]]
    called, at = called[found], at[found]
    c = caller[called]
    waits = np.array([p.late == "wait" for p in spec.promises])[c]
    tau = _caller_timeouts(spec)[workload[called], promise[called]]
    o, lat = outcome[called], latency[called]
    answered = (o == KEPT) | (o == DEGRADED) | (waits & (o == LATE) & ~np.isnan(lat))
    failed = ~answered | (np.isfinite(tau) & ~(lat <= tau))   # (NaN: never answered)
    decided = (o != UNFINISHED) & (outcome[at] != UNFINISHED)
    failed &= decided
    absorbed = failed & np.isin(outcome[at], [KEPT, DEGRADED])   # by a k-of-n, or a fallback
    pairs = sorted({(int(a), int(b)) for a, b in zip(c.tolist(), promise[called].tolist())})
    n_r = result.replications
    rows = []
    for a, b in pairs:
        mine = (c == a) & (promise[called] == b)
        r = rep[called]
        total = np.bincount(r[mine & failed], minlength=n_r)
        held = np.bincount(r[mine & absorbed], minlength=n_r)
        for i in range(n_r):
            rows.append((i, spec.promises[a].name, spec.promises[b].name, int(total[i]),
                         int(held[i])))
    frame = pd.DataFrame(rows, columns=["replication", "promise", "condition", "failed_calls",
                                        "absorbed"])
    frame.attrs.update(result.attrs)
    return frame


def request_cause_summary(result: Any) -> pd.DataFrame:
    """Per root promise, agent and cause: the broken requests blamed on them (``requests``,
    a request with several causes shared among them) and their ``share`` of the promise's
    broken requests, over every replication, largest first within each promise: "payments:
    errors 61%, late 30%, down 9%"."""
    causes = result.request_causes
    table = causes.groupby(["promise", "agent", "cause"], observed=True, sort=False).agg(
        requests=("weight", "sum")).reset_index()
    totals = table.groupby("promise", observed=True)["requests"].transform("sum")
    table["share"] = table["requests"] / totals
    table = table.sort_values(["promise", "requests"], ascending=[True, False], kind="stable",
                              ignore_index=True)
    table.attrs.update(result.attrs)
    return table
