"""The scenario-file form of a model's elements (see :meth:`~promisesim.Model.to_dict`):
each one's fields as plain data, leaving out those at their defaults."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ..dists import Deterministic
from .agents import Bursts
from .injections import Degrade, Partition
from .versions import Canary

__all__: list[str] = []


def _agent_fields(a: Any, entry: dict[str, Any], servers: bool = True) -> dict[str, Any]:
    """The scenario-file fields of an agent, template or super-agent front, added to ``entry``."""
    if a.failures is not None:
        entry["failures"] = {"time_to_failure": a.failures.time_to_failure.to_dict()}
        if a.failures.time_to_repair is not None:
            entry["failures"]["time_to_repair"] = a.failures.time_to_repair.to_dict()
        if a.failures.maintenance is not None:
            entry["failures"]["maintenance"] = {
                "interval": a.failures.maintenance.interval.to_dict(),
                "success": a.failures.maintenance.success,
            }
    if a.service_time != Deterministic(0.0):
        entry["service_time"] = a.service_time.to_dict()
    if servers and a.servers != 1:
        entry["servers"] = a.servers
    if servers and a.limit is not None:
        entry["limit"] = a.limit
    if servers and a.slowdown:
        entry["slowdown"] = a.slowdown
    errors = getattr(a, "errors", 0.0)
    if isinstance(errors, Bursts):
        entry["errors"] = {"bursts": {k: v for k, v in asdict(errors).items()
                                      if k != "baseline" or v}}
    elif errors:
        entry["errors"] = errors
    order = getattr(a, "order", "after")
    if order != "after":
        entry["order"] = order
    if getattr(a, "max_wait", None) is not None:
        entry["max_wait"] = a.max_wait
    if getattr(a, "keep_alive", None) is not None:
        entry["keep_alive"] = a.keep_alive
        if a.cold_start != Deterministic(0.0):
            entry["cold_start"] = a.cold_start.to_dict()
        if a.placement != "recent":
            entry["placement"] = a.placement
    return entry


def _degrade_fields(d: Degrade) -> dict[str, Any]:
    out: dict[str, Any] = {"target": d.target, "at": d.at}
    if d.duration is not None:
        out["duration"] = d.duration
    if d.slower != 1.0:
        out["slower"] = d.slower
    if d.errors:
        out["errors"] = d.errors
    return out


def _event_fields(e: Any) -> dict[str, Any]:
    """A version event's fields as plain data (a canary's steps as lists)."""
    out = asdict(e)
    if isinstance(e, Canary) and isinstance(e.steps, tuple):
        out["steps"] = [list(step) if isinstance(step, tuple) else step for step in e.steps]
    if isinstance(e, Canary) and e.rollback is None:
        del out["rollback"]
    return out


def _partition_fields(x: Partition) -> dict[str, Any]:
    side = lambda v: v if isinstance(v, str) else list(v)  # noqa: E731
    out: dict[str, Any] = {"a": side(x.a), "b": side(x.b), "at": x.at, "duration": x.duration}
    if not x.both_ways:
        out["both_ways"] = False
    return out
