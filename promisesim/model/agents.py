"""Agents: the only things that act."""

from __future__ import annotations

from dataclasses import dataclass

from ..dists import Deterministic, Distribution

__all__ = ["Agent", "Failures"]


@dataclass(frozen=True)
class Failures:
    """Random failures of an agent: an alternating renewal process.

    The agent starts up; its ``k``-th up period lasts draw ``k`` of
    ``time_to_failure`` and the repair that follows lasts draw ``k`` of
    ``time_to_repair`` (both in the model's time unit). Its long-run
    availability is ``MTTF / (MTTF + MTTR)``.
    """

    time_to_failure: Distribution
    time_to_repair: Distribution


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
    """

    name: str
    failures: Failures | None = None
    service_time: Distribution = Deterministic(0.0)
    servers: int = 1
