"""The size of each super-agent over time: how many of its members serve (see
:attr:`promisesim.Result.sizes` and :func:`promisesim.plotting.plot_sizes`).

A member serves while it is up: added by scaling and past its start-up, not failed, not
draining, not in an outage. Members a scale-up has not added yet, and members removed, do
not. The table is computed from the changes of state, so both engines give the same.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

#: A :class:`~promisesim.Result` (not imported: the results import this module).
Result = Any

__all__ = ["sizes", "instances", "mean_size", "mean_steps"]


def _members(result: Result) -> dict[str, list[int]]:
    """Each super-agent's members (agent indices), in the model's order."""
    spec = result.spec
    out: dict[str, list[int]] = {}
    for p in spec.promises:
        group = spec.interior.get(p.name)
        if group in spec.messages_per_call:   # a super-agent (versions have no messages)
            member = spec.agent_index[p.promiser]
            if member not in out.setdefault(group, []):
                out[group].append(member)
    return out


def sizes(result: Result) -> pd.DataFrame:
    """One row per (replication, super-agent, instant its size changed), with ``serving``:
    the members serving from that instant on (the first row of each is at time 0)."""
    changes = result._changes("sizes")
    groups = _members(result)
    frames = []
    for group, members in groups.items():
        inside = np.isin(changes["agent"], members)
        rep = changes["replication"][inside].astype(np.int64)
        time = changes["time"][inside]
        step = np.where(changes["up"][inside], 1, -1)
        order = np.lexsort((time, rep))
        rep, time, step = rep[order], time[order], step[order]
        for r in range(result.replications):
            lo, hi = np.searchsorted(rep, [r, r + 1])
            t = np.r_[0.0, time[lo:hi]]
            serving = len(members) + np.r_[0, np.cumsum(step[lo:hi])]
            last = np.r_[t[1:] != t[:-1], True]   # several changes at one instant: the last
            frames.append(pd.DataFrame({"replication": r, "super_agent": group,
                                        "time": t[last], "serving": serving[last]}))
    columns = {"replication": np.int64, "super_agent": object, "time": float,
               "serving": np.int64}
    if not frames:
        out = pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()})
    else:
        out = pd.concat(frames, ignore_index=True).astype(columns)
        out = out[np.r_[True, (out["serving"].to_numpy()[1:] != out["serving"].to_numpy()[:-1])
                        | (out["time"].to_numpy()[1:] == 0.0)]]   # only changes of size
    out = out.reset_index(drop=True)
    out["super_agent"] = pd.Categorical(out["super_agent"], categories=list(groups))
    return result._frame({c: out[c] for c in out})


def mean_size(table: pd.DataFrame, super_agent: str, times: np.ndarray,
              replications: int) -> np.ndarray:
    """The mean over replications of ``super_agent``'s members serving at each of ``times``
    (time units; each replication's size is a step function, right-continuous), from
    :attr:`Result.sizes <promisesim.Result.sizes>`."""
    return mean_steps(table[table["super_agent"] == super_agent], "serving", times,
                      replications)


def mean_steps(rows: pd.DataFrame, column: str, times: np.ndarray,
               replications: int) -> np.ndarray:
    """The mean over ``replications`` of ``column`` at each of ``times``: ``rows`` (with
    ``replication`` and ``time``) give each replication's steps, the first at time 0."""
    total = np.zeros(len(times))
    for _, one in rows.groupby("replication", observed=True):
        at = np.searchsorted(one["time"].to_numpy(), times, side="right") - 1
        total += one[column].to_numpy()[np.maximum(at, 0)]
    return total / replications


def instances(result: Result) -> pd.DataFrame:
    """One row per (replication, agent with a ``keep_alive``, instant its instances change):
    ``running`` instances from then on (starting, serving or idle within their keep-alive),
    and how many ``started`` then (each a cold start a request waited for). Every such
    agent has a row at time 0 with none running."""
    log = result.trace.instances
    spec = result.spec
    agents = [a.name for a in spec.agents if a.keep_alive is not None]
    columns = ["replication", "agent", "time", "running", "started"]
    if log is None or not agents:
        return result._frame({c: [] for c in columns})
    frames = []
    for name in agents:
        a = spec.agent_index[name]
        mine = log["agent"] == a
        rep, time, change = log["replication"][mine], log["time"][mine], log["change"][mine]
        for r in range(result.replications):
            lo, hi = np.searchsorted(rep, [r, r + 1])
            t, c = np.r_[0.0, time[lo:hi]], np.r_[0, change[lo:hi]]
            running = np.cumsum(c)
            last = np.r_[t[1:] != t[:-1], True]   # several changes at one instant: the sum
            group = np.cumsum(np.r_[True, t[1:] != t[:-1]]) - 1   # each change's instant
            started = np.bincount(group, weights=c > 0).astype(np.int64)
            frames.append(pd.DataFrame({"replication": r, "agent": name, "time": t[last],
                                        "running": running[last], "started": started}))
    out = pd.concat(frames, ignore_index=True)
    out["agent"] = pd.Categorical(out["agent"], categories=agents)
    return result._frame({c: out[c] for c in columns})
