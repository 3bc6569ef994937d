"""What the stages know of the requests reaching one node of a call tree."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...model.spec import CallNode


@dataclass
class _NodeRun:
    """Requests reaching one node of a call tree, and later their outcomes."""

    node: CallNode
    workload: int
    order: int
    reach: np.ndarray                       # indices into the workload's arrivals
    arrival: np.ndarray = field(default=None)  # type: ignore[assignment] # per reach: arrival here
    called: np.ndarray = field(default=None)  # type: ignore[assignment] # reach where the promiser is up
    called_pos: np.ndarray = field(default=None)  # type: ignore[assignment] # their positions in reach
    choice: dict[int, np.ndarray] = field(default_factory=dict)  # id(any-condition) -> item chosen
    ok: np.ndarray = field(default=None)      # type: ignore[assignment] # per reach: kept
    answered: np.ndarray = field(default=None)  # type: ignore[assignment] # per reach: answered, no error
    done: np.ndarray = field(default=None)    # type: ignore[assignment] # per reach: instant resolved
    outcome: np.ndarray = field(default=None)  # type: ignore[assignment]
    latency: np.ndarray = field(default=None)  # type: ignore[assignment]
    partitioned: np.ndarray | None = None     # per reach: cut off by a partition (None: none)
    # An agent whose own work is not after its calls (order "around" or "before") calls at
    # another instant than the arrival: per called, the instants this pass assumed (inf:
    # no calls, lost first), and those its queue gave (see Service._serve).
    calls_at: np.ndarray | None = None
    calls_found: np.ndarray | None = None
    # per reach where the promiser was up and its calls held: kept only thanks to a fallback
    # (None: none was)
    degraded: np.ndarray | None = None
    caller: _NodeRun | None = None            # the run whose condition called this node
    later: bool = False                       # reached by calls sent after others ended
    trigger: np.ndarray | None = None          # ... per reach: when the call that failed went

    def calls_late(self) -> bool:
        """Whether some caller above this node calls on taking a server or on leaving its
        queue (order ``"around"`` or ``"before"``), not on arrival."""
        c = self.caller
        while c is not None:
            if c.calls_at is not None:
                return True
            c = c.caller
        return False

    def called_at(self, pos: np.ndarray) -> np.ndarray:
        """When the caller made its calls for the requests at positions ``pos`` (of
        ``reach``): on reaching it, or (orders ``"around"``, ``"before"``) when this pass
        assumed; a root's requests: on arrival. For calls sent after others ended: when the
        call whose failure they follow was sent (see :meth:`~.later.LaterCalls._later`)."""
        if self.trigger is not None:
            return self.trigger[pos]
        c = self.caller
        if c is None:
            return self.arrival[pos]
        if c.calls_at is None:
            return c.arrival[np.searchsorted(c.reach, self.reach[pos])]
        return c.calls_at[np.searchsorted(c.called, self.reach[pos])]

    def call_order(self, pos: np.ndarray) -> np.ndarray:
        """The key that orders calls reaching this node at one instant, for the requests at
        positions ``pos`` (of ``reach``): when they reached the nearest caller above that
        calls on taking a server or leaving its queue (its queue's order), else their
        arrival at the root."""
        c = self.caller
        if c is None:
            return self.arrival[pos]
        at = np.searchsorted(c.reach, self.reach[pos])
        return c.arrival[at] if c.calls_at is not None else c.call_order(at)


#: How a condition or call resolved for each request: whether it held, when the caller
#: knew it, and whether it held only thanks to a fallback (None: for none of them).
_Resolved = tuple[np.ndarray, np.ndarray, "np.ndarray | None"]
