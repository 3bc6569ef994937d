"""Stage 1: agent states. Every agent's up/down changes in every replication of a batch.

Random failures are renewal processes (cumulative sums of drawn durations, all
replications at once); scheduled outages, start-ups after scaling and an
autoscaler's per-replication membership are merged in by sorting breakpoints;
convergent maintenance finds each repair as the first successful run after a
failure. The result is one :class:`_States` per agent, looked up by binary
search at query instants.
"""

from __future__ import annotations

import numpy as np

from ..._renewal import renewal_counts as _renewal_counts
from ..._renewal import renewal_instants as _renewal_instants
from ..._timeline import _last_at_or_before, _next_change_time
from ...dists import Exponential
from ...model.agents import Bursts
from ...random import Streams
from .kernels import _UNIT

_FAILURE, _OUTAGE = 0, 1


class _States:
    """One agent's up/down changes in a batch, sorted by (replication, time).

    ``rep`` (replication of each change) and ``counts`` (changes per replication) say the
    same thing; either is computed from the other when first needed.
    """

    def __init__(self, time: np.ndarray, up: np.ndarray, cause: np.ndarray, n_reps: int, *,
                 rep: np.ndarray | None = None, counts: np.ndarray | None = None) -> None:
        self.time, self.up, self.cause, self.n_reps = time, up, cause, n_reps
        self._rep, self._counts = rep, counts

    @property
    def rep(self) -> np.ndarray:
        if self._rep is None:
            assert self._counts is not None
            self._rep = np.repeat(np.arange(self.n_reps), self._counts)
        return self._rep

    @property
    def counts(self) -> np.ndarray:
        if self._counts is None:
            self._counts = np.bincount(self.rep, minlength=self.n_reps)
        return self._counts

    def up_at(self, q_rep: np.ndarray, q_time: np.ndarray) -> np.ndarray:
        last = _last_at_or_before(self.rep, self.time, q_rep, q_time)
        return np.where(last >= 0, self.up[np.maximum(last, 0)], True) if self.time.size else \
            np.ones(q_time.size, dtype=bool)

    def next_change_after(self, q_rep: np.ndarray, q_time: np.ndarray) -> np.ndarray:
        """Instant of the first change strictly after each query (inf if none in the batch)."""
        if self.time.size == 0:
            return np.full(q_time.size, np.inf)
        return _next_change_time(self.rep, self.time, q_rep, q_time)


class AgentStates:
    """The agent-state stage of a batch (:class:`~promisesim.engines.vector.batch._Batch`).

    Reads ``spec``, ``horizon``, ``streams``, ``reps`` and ``membership``; :meth:`run`
    of the batch stores the results as ``states`` (every outage) and ``alive`` (draining
    outages left out), and agents' error bursts as ``bursts``.
    """

    def _bursts(self) -> dict[int, _States]:
        """Error bursts of every agent that has them: ``up`` means *in a burst* here, on
        ``[start, end)``. Good period ``k`` is draw ``k`` of ``("burst_gap", agent)``,
        burst ``k`` draw ``k`` of ``("burst", agent)``: an alternating renewal process."""
        out = {}
        n_rep = self.reps.size
        for a, agent in enumerate(self.spec.agents):
            b = agent.errors
            if not isinstance(b, Bursts):
                continue
            keys = [self.streams.keys(self.reps, purpose, agent.name)
                    for purpose in ("burst_gap", "burst")]
            counts, time, phase = _renewal_counts(
                keys, [Exponential(mean=1.0 / b.rate), Exponential(mean=b.mean_duration)],
                self.horizon)
            out[a] = _States(time, phase == 0, np.zeros(time.size, dtype=np.int8), n_rep,
                             counts=counts)
        return out

    def _agent_states(self, drains: bool = True) -> list[_States]:
        """Up/down changes of every agent in every replication, in one pass.

        Rows are (agent, replication) pairs, ``row = agent * n_reps + replication``.
        With ``drains=False``, draining outages are left out (the agent is alive).
        """
        spec, horizon, n_rep = self.spec, self.horizon, self.reps.size
        fast = self._failures_only() if self.membership is None else None
        if fast is not None:
            return fast
        parts_row, parts_time, parts_fail, parts_delta = [], [], [], []
        groups: dict[tuple, list[int]] = {}
        for a, agent in enumerate(spec.agents):
            if agent.failures is not None and agent.failures.maintenance is not None:
                row, time, phase = self._maintained(a)
                parts_row.append(a * n_rep + row)
                parts_time.append(time)
                parts_fail.append(np.where(phase == 0, 1, 0).astype(np.int8))
                parts_delta.append(np.zeros(row.size, dtype=np.int64))
            elif agent.failures is not None:
                groups.setdefault((agent.failures.time_to_failure, agent.failures.time_to_repair),
                                  []).append(a)
        for (ttf, ttr), members in groups.items():
            names = [spec.agents[a].name for a in members]
            keys = [self.streams.keys_many(self.reps, purpose, names)
                    for purpose in ("time_to_failure", "time_to_repair")]
            row, time, phase = _renewal_instants(keys, [ttf, ttr], horizon)
            agent_of_row = np.asarray(members)[row // n_rep]
            parts_row.append(agent_of_row * n_rep + row % n_rep)
            parts_time.append(time)
            parts_fail.append(np.where(phase == 0, 1, 0).astype(np.int8))  # 1: fails, 0: repaired
            parts_delta.append(np.zeros(row.size, dtype=np.int64))
        outages = [o for o in spec.outages if drains or not o.drain]
        for outage in outages:
            a = spec.agent_index[outage.target]
            start, end = outage.at, outage.at + outage.duration
            parts_row.append(np.repeat(a * n_rep + np.arange(n_rep), 2))
            parts_time.append(np.tile([float(start), float(end)], n_rep))
            parts_fail.append(np.full(2 * n_rep, -1, dtype=np.int8))        # -1: not a failure row
            parts_delta.append(np.tile([1, -1], n_rep))
        every = np.arange(n_rep)
        for s in spec.startups:   # a start-up: down for a draw, warm or cold
            a = spec.agent_index[s.target]
            index = np.full(n_rep, s.index)
            duration = self._draws("startup", s.target, s.cold, every, index)
            if s.reuse > 0:
                warm = self._draws("reuse", s.target, _UNIT, every, index) < s.reuse
                duration = np.where(warm, self._draws("startup", s.target, s.warm, every, index),
                                    duration)
            down = np.flatnonzero(duration > 0)
            parts_row.append(np.repeat(a * n_rep + down, 2))
            parts_time.append(np.stack([np.full(down.size, float(s.at)),
                                        s.at + duration[down]], axis=1).ravel())
            parts_fail.append(np.full(2 * down.size, -1, dtype=np.int8))
            parts_delta.append(np.tile([1, -1], down.size))
        if self.membership is not None:   # per-replication outages, drains left out if asked
            m_row, m_start, m_end, m_drain = (x if drains else x[~self.membership[3]]
                                              for x in self.membership)
            parts_row.append(np.repeat(m_row, 2))
            parts_time.append(np.stack([m_start, m_end], axis=1).ravel())
            parts_fail.append(np.full(2 * m_row.size, -1, dtype=np.int8))
            parts_delta.append(np.tile([1, -1], m_row.size))
        outages = outages + list(spec.startups)
        if self.membership is not None:   # (below, only whether there are any matters)
            outages.append(self.membership)
        n_agents = len(spec.agents)
        if not parts_row:
            empty = np.empty(0)
            return [_States(empty, empty.astype(bool), empty.astype(np.int8), n_rep,
                            rep=empty.astype(np.int64)) for _ in range(n_agents)]
        row = np.concatenate(parts_row)
        time = np.concatenate(parts_time)
        fail = np.concatenate(parts_fail)
        delta = np.concatenate(parts_delta)
        if outages:
            order = np.lexsort((time, row))
        else:  # each pair's instants come from one renewal process, already in time order
            order = np.argsort(row, kind="stable")
        row, time, fail, delta = row[order], time[order], fail[order], delta[order]
        same_instant = (row[1:] == row[:-1]) & (time[1:] == time[:-1])
        if not outages and not same_instant.any():
            # Failures alone, no two at one instant: every instant is a change of state.
            c_row, c_time, c_up = row, time, fail == 0
            c_cause = np.full(row.size, _FAILURE, dtype=np.int8)
            return self._split(c_row, c_time, c_up, c_cause)
        # failure state after each row: forward fill of the last failure row of the same pair
        index = np.arange(row.size)
        last_fail = np.maximum.accumulate(np.where(fail >= 0, index, -1))
        same = last_fail >= 0
        same[same] = row[last_fail[same]] == row[same]
        failed = np.zeros(row.size, dtype=bool)
        failed[same] = fail[last_fail[same]] == 1
        outages = np.cumsum(delta)  # every pair's outages open and close: sums restart at 0
        up = ~failed & (outages == 0)
        # the state at an instant is the state after its last row
        last_of_instant = np.ones(row.size, dtype=bool)
        last_of_instant[:-1] = (row[1:] != row[:-1]) | (time[1:] != time[:-1])
        g_row, g_time, g_up, g_failed = (x[last_of_instant] for x in (row, time, up, failed))
        first = np.ones(g_row.size, dtype=bool)
        first[1:] = g_row[1:] != g_row[:-1]
        prev_up = np.concatenate(([True], g_up[:-1]))
        prev_up[first] = True
        prev_failed = np.concatenate(([False], g_failed[:-1]))
        prev_failed[first] = False
        change = (g_up != prev_up) & (g_time < horizon)
        cause = np.where(g_failed != prev_failed, _FAILURE, _OUTAGE).astype(np.int8)
        return self._split(g_row[change], g_time[change], g_up[change], cause[change])

    def _failure_groups(self) -> dict[tuple, list[int]]:
        """Agents with random failures (no maintenance), grouped by their two distributions."""
        groups: dict[tuple, list[int]] = {}
        for a, agent in enumerate(self.spec.agents):
            if agent.failures is not None:
                groups.setdefault((agent.failures.time_to_failure, agent.failures.time_to_repair),
                                  []).append(a)
        return groups

    def _failures_only(self) -> list[_States] | None:
        """Agent states when random failures are the only changes and no two fall on one
        instant (then every instant is a change): per-agent slices of the renewal instants,
        no sorting. None when that does not apply."""
        spec, n_rep = self.spec, self.reps.size
        if spec.outages or spec.startups or any(
                a.failures is not None and a.failures.maintenance is not None for a in spec.agents):
            return None
        empty = np.empty(0)
        states = [_States(empty, empty.astype(bool), empty.astype(np.int8), n_rep,
                          counts=np.zeros(n_rep, dtype=np.int64)) for _ in spec.agents]
        flat = []
        for (ttf, ttr), members in self._failure_groups().items():
            names = [spec.agents[a].name for a in members]
            keys = [self.streams.keys_many(self.reps, purpose, names)
                    for purpose in ("time_to_failure", "time_to_repair")]
            counts, time, phase = _renewal_counts(keys, [ttf, ttr], self.horizon)
            if time.size > 1 and bool((time[1:] == time[:-1]).any()):
                return None   # two changes at one instant (zero durations): the general path
            up = phase != 0   # phase 0: a time to failure ends
            cause = np.full(time.size, _FAILURE, dtype=np.int8)
            counts = counts.reshape(len(members), n_rep)
            bounds = np.zeros(len(members) + 1, dtype=np.int64)
            np.cumsum(counts.sum(axis=1), out=bounds[1:])
            for i, a in enumerate(members):
                lo, hi = bounds[i], bounds[i + 1]
                states[a] = _States(time[lo:hi], up[lo:hi], cause[lo:hi], n_rep, counts=counts[i])
            flat.append((members, counts, time, up, cause))
        if len(flat) == 1 and flat[0][0] == sorted(flat[0][0]):
            self._flat_changes = flat[0]   # already in (agent, replication, time) order
        return states

    def _split(self, row: np.ndarray, time: np.ndarray, up: np.ndarray, cause: np.ndarray
               ) -> list[_States]:
        """Changes of (agent, replication) rows, sorted by row, as one _States per agent."""
        n_rep = self.reps.size
        bounds = np.searchsorted(row, np.arange(len(self.spec.agents) + 1) * n_rep)
        return [_States(time[lo:hi], up[lo:hi], cause[lo:hi], n_rep, rep=row[lo:hi] % n_rep)
                for lo, hi in zip(bounds[:-1], bounds[1:])]

    def _maintained(self, a: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Failures and repairs of an agent under convergent maintenance, every replication.

        Runs are a renewal process; the repair after a failure is the first successful run
        strictly after it (a run at the failure instant finds the agent still up). The loop
        advances every replication by one failure cycle per iteration.
        """
        agent = self.spec.agents[a]
        assert agent.failures is not None and agent.failures.maintenance is not None
        maintenance = agent.failures.maintenance
        n_rep, horizon = self.reps.size, self.horizon
        run_row, run_time, _ = _renewal_instants(
            [self.streams.keys(self.reps, "maintenance", agent.name)], [maintenance.interval],
            horizon)
        starts = np.searchsorted(run_row, np.arange(n_rep + 1))
        run_index = np.arange(run_row.size) - starts[run_row]
        s0, s1 = self.streams.keys(self.reps, "repair_success", agent.name)
        ok = Streams.draw_at(_UNIT, s0[run_row], s1[run_row], run_index.astype(np.uint64)) \
            < maintenance.success
        # next successful run at or after each run, within the same replication
        big = run_row.size
        nxt = np.minimum.accumulate(np.where(ok, np.arange(big), big)[::-1])[::-1]
        nxt_valid = nxt < big
        nxt_valid[nxt_valid] = run_row[nxt[nxt_valid]] == run_row[nxt_valid]
        f0, f1 = self.streams.keys(self.reps, "time_to_failure", agent.name)
        dist = agent.failures.time_to_failure
        rows = np.arange(n_rep)
        repaired = np.zeros(n_rep)
        out_row, out_time, out_phase = [], [], []
        k = 0
        while rows.size:
            fail = repaired[rows] + Streams.draw_at(dist, f0[rows], f1[rows], np.full(rows.size, k, np.uint64))
            inside = fail < horizon
            rows, fail = rows[inside], fail[inside]
            out_row.append(rows)
            out_time.append(fail)
            out_phase.append(np.zeros(rows.size, dtype=np.int64))
            # first run strictly after the failure: binary search in each replication's runs
            lo, hi = starts[rows].copy(), starts[rows + 1].copy()
            while True:
                active = lo < hi
                if not active.any():
                    break
                mid = (lo + hi) // 2
                right = active & (run_time[np.minimum(mid, big - 1)] <= fail)
                lo = np.where(right, mid + 1, lo)
                hi = np.where(active & ~right, mid, hi)
            found = lo < starts[rows + 1]
            found[found] = nxt_valid[lo[found]]
            rows, lo = rows[found], lo[found]
            repair = run_time[nxt[lo]]
            out_row.append(rows)
            out_time.append(repair)
            out_phase.append(np.ones(rows.size, dtype=np.int64))
            repaired[rows] = repair
            k += 1
        row = np.concatenate(out_row)
        time = np.concatenate(out_time)
        phase = np.concatenate(out_phase)
        order = np.lexsort((time, row))
        return row[order], time[order], phase[order]

    def _change_columns(self) -> dict[str, np.ndarray]:
        n_agents, n_rep = len(self.states), self.reps.size
        reps = np.tile(self.reps.astype(np.int32), n_agents)
        flat = getattr(self, "_flat_changes", None)
        if flat is not None:   # one group of agents: its arrays are the columns
            members, counts, time, up, cause = flat
            return {"replication": np.repeat(reps[:len(members) * n_rep], counts.ravel()),
                    "time": time,
                    "agent": np.repeat(np.asarray(members, dtype=np.int32), counts.sum(axis=1)),
                    "up": up, "cause": cause}
        counts = np.concatenate([st.counts for st in self.states])
        sizes = [st.time.size for st in self.states]
        return {"replication": np.repeat(reps, counts),
                "time": np.concatenate([st.time for st in self.states]),
                "agent": np.repeat(np.arange(n_agents, dtype=np.int32), sizes),
                "up": np.concatenate([st.up for st in self.states]).astype(np.bool_),
                "cause": np.concatenate([st.cause for st in self.states]).astype(np.int8)}
