"""What happens to a model from outside: workloads and injected faults."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Outage", "Workload"]


@dataclass(frozen=True)
class Outage:
    """A scheduled outage: ``target`` is down on ``[at, at + duration)``.

    The outage overlays the agent's own failure process: the agent is up
    only when neither holds it down, and its failure clock keeps running
    during the outage (a power cut does not reset wear). Requests inside the
    agent when the outage starts are lost.
    """

    target: str
    at: float
    duration: float


@dataclass(frozen=True)
class Workload:
    """Poisson arrivals of requests to a latency promise at ``rate`` per time unit."""

    promise: str
    rate: float
    name: str | None = None

    @property
    def label(self) -> str:
        """The workload's name (the promise's name unless given)."""
        return self.name if self.name is not None else self.promise
