"""Instances started on demand: the servers of an agent with ``keep_alive`` (a serverless
function), in the reference engine. See :class:`~promisesim.model.agents.Agent`."""

from __future__ import annotations

import math

__all__ = ["Instances"]


class Instances:
    """Which of an agent's instances run, and since when each is idle.

    An instance freed at ``u`` runs (is warm) for a request taking it at ``t`` iff
    ``t < u + keep_alive``: the keep-alive is half open, so one taken exactly
    ``keep_alive`` after it was freed starts again. None runs at first.
    """

    __slots__ = ("keep_alive", "placement", "freed", "busy", "log")

    def __init__(self, servers: int, keep_alive: float, placement: str,
                 log: list[tuple[float, int]] | None = None) -> None:
        self.keep_alive = keep_alive
        self.placement = placement
        self.freed = [-math.inf] * servers   # when each was last freed (-inf: never started)
        self.busy = [False] * servers
        #: (instant, +1 started / -1 stopped), in the order they are known
        self.log: list[tuple[float, int]] = [] if log is None else log

    def take(self, now: float) -> tuple[int, bool]:
        """The instance a request that takes a server at ``now`` gets, and whether it has to
        start (cold). An idle running one by the placement (ties: the lowest numbered), else
        the lowest-numbered one that is not running."""
        best = -1
        for i, (busy, freed) in enumerate(zip(self.busy, self.freed)):
            if busy or not now < freed + self.keep_alive:
                continue
            if best < 0 or (self.placement == "recent" and freed > self.freed[best]) or (
                    self.placement == "spread" and freed < self.freed[best]):
                best = i
        cold = best < 0
        if cold:
            best = self.busy.index(False)
            if self.freed[best] > -math.inf:   # it stopped when its keep-alive ran out
                self.log.append((self.freed[best] + self.keep_alive, -1))
            self.log.append((now, 1))
        self.busy[best] = True
        return best, cold

    def stop(self, now: float, horizon: float) -> None:
        """Log the stops of the instances that ran, at ``now`` (a crash stops them all) or,
        with ``now`` at the horizon, those whose keep-alive ran out before it."""
        for busy, freed in zip(self.busy, self.freed):
            if freed == -math.inf and not busy:
                continue   # never started, or stopped and logged when taken cold
            end = now if busy else min(freed + self.keep_alive, now)
            if end < horizon:
                self.log.append((end, -1))

    def free(self, instance: int, now: float) -> None:
        """``instance`` finished its request at ``now``: idle, running until its keep-alive."""
        self.busy[instance] = False
        self.freed[instance] = now
