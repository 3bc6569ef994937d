"""Agents: the only things that act."""

from __future__ import annotations

from dataclasses import dataclass

from ..dists import Deterministic, Distribution

__all__ = ["Agent", "Failures", "Maintenance"]


@dataclass(frozen=True)
class Maintenance:
    """Convergent maintenance, as a configuration agent (CFEngine) runs it.

    Maintenance runs come one ``interval`` draw after another from time 0
    (the first run one draw after 0). A run that finds the agent failed
    repairs it with probability ``success``; a failed agent is repaired by
    nothing else. With exponential drift at rate ``lambda``, fixed interval
    ``T`` and ``d = 1 - exp(-lambda T)``, the agent is still broken after a
    run with probability ``d(1-s) / (d(1-s) + s)``.
    """

    interval: Distribution
    success: float = 1.0


@dataclass(frozen=True)
class Failures:
    """Random failures of an agent.

    The agent starts up; its ``k``-th up period lasts draw ``k`` of
    ``time_to_failure``. Then either the repair lasts draw ``k`` of
    ``time_to_repair`` (an alternating renewal process, availability
    ``MTTF / (MTTF + MTTR)``), or, with ``maintenance`` instead, the agent
    stays failed until a maintenance run repairs it (all times in the model's
    time unit). Give exactly one of ``time_to_repair`` and ``maintenance``.
    """

    time_to_failure: Distribution
    time_to_repair: Distribution | None = None
    maintenance: Maintenance | None = None


@dataclass(frozen=True)
class Agent:
    """An autonomous agent: a service, a host, a third party, a consumer.

    Parameters
    ----------
    name : str
        Unique among the model's agents.
    failures : Failures or None
        Random failures; ``None`` means the agent fails only by injected outages.
    service_time : Distribution
        Time one server needs to serve one request (default zero: the agent
        answers as soon as its conditions are met).
    servers : int
        Requests served at once; further requests wait in a FIFO queue.
    limit : int or None
        A hidden capacity limit: a request arriving while the agent already
        holds ``limit`` requests (waiting for their calls, queued or in
        service) is *rejected*. ``None``: no limit.
    slowdown : float
        Load-dependent slowdown: a request's service time is multiplied by
        ``1 + slowdown * n``, where ``n`` is the number of other requests
        queued or in service at the agent when its service starts.
    """

    name: str
    failures: Failures | None = None
    service_time: Distribution = Deterministic(0.0)
    servers: int = 1
    limit: int | None = None
    slowdown: float = 0.0
