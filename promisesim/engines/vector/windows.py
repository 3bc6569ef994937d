"""Time windows and carry-over: long runs without request records in bounded memory.

A replication with many requests is computed in windows of arrival time; each
window counts the requests that are final and carries each queue's state (its
servers' free instants) and the requests not yet final to the next
(:meth:`Windows.count_windows`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..base import OUTCOMES
from .arrivals import _Requests, _merge_requests


class Windows:
    """The time-window stage of a batch (:class:`~promisesim.engines.vector.batch._Batch`).

    Sets ``windowed``; carries ``ghosts`` (each queue's busy servers) and ``bindings``
    (push-mode choices) from window to window, from the ``queue_log`` and ``push_log`` the
    other stages write.
    """

    # -- time windows ------------------------------------------------------------------------
    def count_windows(self, length: float) -> np.ndarray:
        """Request counts computed in windows of arrival time, so memory holds about one
        window's requests whatever the horizon; the counts are those of one pass.

        Each window computes the requests whose root arrives before its end ``hi``, starting
        from the state the window before left. A request's fate depends only on the
        requests that entered a queue before it (FIFO), so every request whose every queue
        entry came before ``hi`` is final. The window then picks, per replication, a cut:
        the requests whose root arrived before it are counted, and those after it are
        computed again in the next window, with new arrivals. The cut is the earliest
        root with an entry at or after ``hi`` (or, at a queue with a limit or slowdown,
        still inside at ``hi``), moved earlier until at every queue the counted requests'
        entries all precede the others' (so the next window can start from the queue's
        state after the counted ones: its servers' free instants, carried as entries ready
        at 0; a queue with a limit or slowdown must be empty there instead). If no request
        can be counted, the replication's requests all carry over and the next window is
        simply longer.
        """
        spec, horizon, n_rep = self.spec, self.horizon, self.reps.size
        self.windowed = True
        self.ghosts = {}
        self.bindings = {}
        table = np.zeros((n_rep, len(spec.promises), len(OUTCOMES)), dtype=np.int64)
        n_w = len(spec.workloads)
        pending = [_Requests(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0))
                   for _ in range(n_w)]
        # where each workload's arrival process stands: last instant, next draw
        last = [np.full(n_rep, float(w.start)) for w in spec.workloads]
        nxt = [np.zeros(n_rep, dtype=np.int64) for _ in spec.workloads]
        hi = 0.0
        while True:
            hi = min(hi + length, horizon)
            final = hi >= horizon
            arrivals = []
            for w in range(n_w):
                new = self._window_arrivals(w, last[w], nxt[w], hi)
                arrivals.append(_merge_requests(pending[w], new))
            self._requests(arrivals)
            if final:
                table += self._count_table(None)
                break
            cut = self._cut(hi)
            table += self._count_table(cut)
            self._carry(cut)
            pending = [_Requests(a.rep[keep], a.index[keep], a.time[keep])
                       for a in arrivals for keep in [a.time >= cut[a.rep]]]
            del arrivals
        self.windowed = False
        return table

    def _log_queue(self, agent: int, entries: list, bounds: np.ndarray,  # type: ignore[type-arg]
                   rep: np.ndarray, ready: np.ndarray, done: np.ndarray, crash: np.ndarray,
                   n_g: int, limited: tuple[np.ndarray, np.ndarray, np.ndarray] | None) -> None:
        """Keep what the cut and the carried state need of one queue's entries."""
        root = np.empty(rep.size)
        root[:n_g] = -np.inf   # the carried servers count as requests before every cut
        for (run, pos, *_rest), lo, hi in zip(entries, bounds[:-1], bounds[1:]):
            root[lo:hi] = self.arrivals[run.workload].time[run.reach[pos]]
        if limited is None:
            extent = ready
        else:   # when it left: rejected or turned back at once, served, or lost in a crash
            # (inside from its arrival: a request waiting for its calls counts to the limit)
            enters, rejected, arrival = limited
            extent = np.where(enters & ~rejected, np.minimum(done, crash),
                              np.where(rejected, arrival, np.minimum(ready, crash)))
            ready = arrival
        self.queue_log[agent] = _QueueLog(rep, root, ready, extent, done, crash, limited is not None)

    def _cut(self, hi: float) -> np.ndarray:
        """Per replication, the arrival instant before which requests are final (see
        :meth:`count_windows`)."""
        n_rep = self.reps.size
        cut = np.full(n_rep, np.inf)
        logs = list(self.queue_log.values()) + list(self.push_log.values())
        for log in logs:
            late = log.extent >= hi
            np.minimum.at(cut, log.rep[late], log.root[late])
        changed = True
        while changed:   # each pass moves some cuts to an earlier arrival: it ends
            changed = False
            for log in logs:
                after = log.root >= cut[log.rep]
                first = np.full(n_rep, np.inf)   # the earliest entry of a request computed again
                np.minimum.at(first, log.rep[after], log.ready[after])
                bad = ~after & (log.extent >= first[log.rep])
                if bad.any():
                    np.minimum.at(cut, log.rep[bad], log.root[bad])
                    changed = True
        return cut

    def _carry(self, cut: np.ndarray) -> None:
        """Each queue's state after the requests counted so far: its servers' free instants
        (the largest departures in the last stretch between crashes)."""
        for agent, log in self.queue_log.items():
            if log.limited:
                continue   # empty at the cut (see _cut)
            servers = self.spec.agents[agent].servers
            before = log.root < cut[log.rep]
            rep, ready, done, crash = log.rep[before], log.ready[before], log.done[before], \
                log.crash[before]
            if rep.size == 0:
                self.ghosts.pop(agent, None)
                continue
            # the crash that ends the stretch of each replication's last entry
            order = np.lexsort((ready, rep))
            last = np.ones(rep.size, dtype=bool)
            last[:-1] = rep[order][1:] != rep[order][:-1]
            stretch = np.full(self.reps.size, np.nan)
            stretch[rep[order][last]] = crash[order][last]
            same = crash == stretch[rep]
            rep, done, crash = rep[same], done[same], crash[same]
            order = np.lexsort((done, rep))
            rep, done, crash = rep[order], done[order], crash[order]
            # the ``servers`` largest departures of each replication
            end = np.ones(rep.size, dtype=bool)
            end[:-1] = rep[1:] != rep[:-1]
            rank = np.arange(rep.size)
            last_of = np.minimum.accumulate(np.where(end, rank, rep.size)[::-1])[::-1]
            keep = last_of - rank < servers
            self.ghosts[agent] = (rep[keep], done[keep], crash[keep])
        self.queue_log = {}
        for key, log in self.push_log.items():   # the binding after the last counted request
            before = log.root < cut[log.rep]
            rep, times, bound = log.rep[before], log.ready[before], log.done[before]
            binding = self.bindings.get(key, np.zeros(self.reps.size, dtype=np.int64)).copy()
            order = np.lexsort((times, rep))
            last = np.ones(rep.size, dtype=bool)
            last[:-1] = rep[order][1:] != rep[order][:-1]
            binding[rep[order][last]] = bound[order][last].astype(np.int64)
            self.bindings[key] = binding
        self.push_log = {}


@dataclass
class _QueueLog:
    """One queue's entries in a time window (the carried servers first)."""

    rep: np.ndarray       # batch position of the replication
    root: np.ndarray      # arrival instant of the request's root (-inf: carried server)
    ready: np.ndarray     # when it reached the queue
    extent: np.ndarray    # until when it matters to the cut
    done: np.ndarray      # its departure (before any crash)
    crash: np.ndarray     # the crash ending its stretch
    limited: bool
