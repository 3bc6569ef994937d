"""One batch of replications through the vector engine's stages.

:class:`_Batch` holds a batch's state and runs the stages in order: agent
states (:mod:`.states`), then requests in passes, each routing them top down
(:mod:`.routing`) and serving the agents callees first (:mod:`.queues`), then
records (:mod:`.records`), in time windows for long runs (:mod:`.windows`).
"""

from __future__ import annotations

import numpy as np

from ...errors import EngineError
from ...model.promises import Latency
from ...model.spec import ModelSpec
from ...random import Streams
from ..base import REJECTED
from .arrivals import Arrivals, _Requests
from .queues import Service
from .later import _matches
from .records import Records
from .routing import Routing, _NodeRun
from .states import AgentStates
from .structure import _agent_order, _gated_nodes, _sends_later
from .windows import Windows, _QueueLog


#: Passes over the requests after which a batch whose agents call while or after serving
#: gives up (:class:`_Unsettled`): the passes settle an agent's busy periods a few requests
#: at a time when its providers' response times depend on when it calls (a provider that
#: also serves other traffic, overloaded), and the reference engine's event loop is then
#: the faster way to the same results. Measured: 3 passes for a caller whose only provider
#: serves nobody else; 1,153 (274 s, against 13 s for the reference engine) for a caller
#: piling up behind a provider slowed 10x and shared with other traffic. Retries add one
#: pass per retry a call may make (each pass settles at least one more attempt).
_MAX_CALL_PASSES = 12

#: ... or sooner, from the third pass on, when a pass leaves more requests unsettled than
#: the pass before (a retry storm: each pass finds more retries), or (one pass more per
#: retry a call may make) more than this share of them: the passes are settling a few
#: requests at a time. Measured on a caller holding its server while its only provider is
#: slowed 10x for 10 minutes (4 replications): 39,649, 33,794, 23,988, 23,891, ... 22,210 of 48,347 calls
#: unsettled after 40 passes; the handover after pass 4 takes 1.7 s where 12 passes took
#: 4.3 s. The same share for a limited agent's refusals (:meth:`_Batch._refusals_settled`):
#: an overloaded capped front (3 requests/s at two servers of mean 1 s, cap 4, 1
#: replication of 10 minutes) guessed 1,697, 1,689, 1,684, ... refusals wrong, 1,270 after
#: 60 passes (199 passes, 9.2 s, against 0.03 s for the reference engine), where a limited
#: tandem settles in 6: 5,961, 388, 183, 12, 2, 0.
_STALLED_SHARE = 0.9
#: (refusals: when more than this many are still wrong; a few settle in a few passes)
_STALLED_MIN = 64


class _Unsettled(Exception):
    """A batch's passes over requests did not settle within :data:`_MAX_CALL_PASSES`."""


class _Batch(AgentStates, Arrivals, Routing, Service, Records, Windows):
    """A batch of replications: the state the stages share, and the passes over requests.

    Each stage is a base class in a module of its own, whose docstring says which of the
    batch's attributes it reads and writes; this class holds those attributes and runs
    the stages in order (:meth:`run`, then :meth:`_requests`).
    """

    #: Outages that differ between replications (an autoscaler's members): ``(row, start, end,
    #: drain)`` arrays, ``row = agent * n_reps + replication``; None: none.
    membership: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
    #: Agents whose served requests :meth:`_queue` logs as ``(rep, ready, end)`` (end: the
    #: departure, or the crash that lost it); None: log nothing.
    busy_log: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray] | None] | None = None

    def __init__(self, spec: ModelSpec, horizon: float, streams: Streams, reps: np.ndarray) -> None:
        self.spec = spec
        self.falls_back = "fallbacks" in spec.features
        self.sends_later = _sends_later(spec)
        self.horizon = horizon
        self.streams = streams
        self.reps = reps
        self.promiser = [spec.agent_index[p.promiser] for p in spec.promises]
        self.deadline = np.array([p.body.deadline if isinstance(p.body, Latency) else np.inf
                                  for p in spec.promises])
        self.windowed = False
        self.ghosts: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.queue_log: dict[int, _QueueLog] = {}
        self.instance_log: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        # push-mode choices in time windows: the binding carried, and this window's requests
        self.bindings: dict[int, np.ndarray] = {}
        self.push_log: dict[int, _QueueLog] = {}

    def run(self) -> dict[str, np.ndarray]:
        """Agent states; returns the agent changes (then see :meth:`write_records` and
        :meth:`counts`, which compute the requests)."""
        self.states = self._agent_states()
        self.bursts = self._bursts()
        # Draining outages stop new requests but lose none: crashes come from the states
        # without them.
        self.alive = self._agent_states(drains=False) if any(
            o.drain for o in self.spec.outages) or self.membership is not None else self.states
        return self._change_columns()

    def _draws(self, purpose: str, key: str, dist, rep: np.ndarray,  # type: ignore[no-untyped-def]
               index: np.ndarray) -> np.ndarray:
        """Draws ``index`` of ``(purpose, key)`` in replications ``rep`` (batch positions)."""
        k0, k1 = self.streams.keys(self.reps, purpose, key)
        return Streams.draw_rows(dist, k0, k1, rep, index)

    # -- requests ------------------------------------------------------------------------
    def _requests(self, arrivals: list[_Requests] | None = None) -> None:
        """Every request's path and outcome, for ``arrivals`` (default: every arrival)."""
        spec = self.spec
        if arrivals is None and getattr(self, "runs", None) is not None:
            return   # every arrival is computed already
        self.arrivals = arrivals if arrivals is not None else \
            [self._arrivals(w) for w in range(len(spec.workloads))]
        gated = _gated_nodes(spec)
        self.refused: dict[int, np.ndarray] = {}    # node -> requests assumed rejected
        # node -> (requests, instants): when they call, where that is not on arrival
        self.calls_assumed: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.guesses: set[int] = set()
        # a call sent after others ended (a retry's node, a fallback's item) -> (requests,
        # instants sent): as this pass assumes, as it routed them, as it finds (see
        # LaterCalls._retries)
        self.later_assumed: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        passes = 0
        self.unsettled = [0]
        self.refusals_left: list[int] = []
        # retries settle an attempt a pass at least: as many passes more as a call's retries
        attempts = max((p.retries for p in spec.promises), default=0)
        while True:   # one pass, unless a limited agent turns away requests that would call,
            # or an agent calls while or after serving (orders "around", "before")
            self.queue_log = {}
            self.instance_log = {}   # agent -> its instances' starts and stops (this pass)
            self.push_log = {}
            self.later_used: dict[int, tuple[np.ndarray, np.ndarray]] = {}
            self.later_found: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
            self.runs: list[_NodeRun] = []
            self.by_node: dict[int, _NodeRun] = {}
            for w, tree in enumerate(spec.call_trees):
                self._reach(tree, w, np.arange(self.arrivals[w].time.size), self.arrivals[w].time)
            order, _ = _agent_order(spec)
            for agent in order:
                runs = [r for r in self.runs if self.promiser[r.node.promise] == agent]
                if runs:
                    self._serve(agent, runs)
            settled = self._refusals_settled(gated) if gated else True
            if self._calls_settled() and settled:
                break
            passes += 1
            left = self.unsettled
            if (self.calls_assumed or self.later_assumed) and (
                    passes >= _MAX_CALL_PASSES + attempts or passes >= 3 and left[-1] > left[-2]
                    or passes >= 3 + attempts and left[-1] > _STALLED_SHARE * left[-2]):
                raise _Unsettled
            refusals = self.refusals_left
            if len(refusals) >= 3 and refusals[-1] > max(_STALLED_SHARE * refusals[-2],
                                                         _STALLED_MIN):
                raise _Unsettled   # each pass settles a few refusals: a long overload
            guess = hash(b"".join(self.refused[k].tobytes() + b"|" for k in sorted(self.refused))
                         + b"".join(self.calls_assumed[k][1].tobytes() + b"|"
                                    for k in sorted(self.calls_assumed))
                         + b"".join(self.later_assumed[k][1].tobytes() + b"|"
                                    for k in sorted(self.later_assumed)))
            if guess in self.guesses:
                raise EngineError("the vector engine's passes over requests do not settle "
                                  "(simultaneous events at a limited agent, or at an agent "
                                  "that calls while serving); use the reference engine")
            self.guesses.add(guess)

    def _calls_settled(self) -> bool:
        """Whether every agent that calls while or after serving (orders ``"around"`` and
        ``"before"``) called when this pass assumed; if not, the next pass assumes what
        this one found.

        Such a request's calls go out when it takes a server (or leaves the queue), which
        depends on the queue, which (order ``"around"``) depends on how long earlier
        requests waited for their calls. A pass assumes the instants (at first: on
        arrival), routes and resolves the calls made then, and serves the queue, which
        gives the instants. Everything before the first instant the pass assumed wrong is
        right, so it finds that one right too: each pass extends the right prefix, and the
        passes end, exactly, when a pass finds the instants it assumed. The queue kernels
        carry the effect of a changed response time along a whole busy period in one pass,
        so this takes a few passes in practice (three for a caller whose only provider
        serves nobody else).

        The same for calls sent after others ended, retries and fallbacks (see
        :meth:`~promisesim.engines.vector.later.LaterCalls._retries`): whether each was
        routed for the requests, sent at the instants, that this pass found sending it;
        typically one pass more than the attempts a request makes.
        """
        left = 0
        empty = np.empty(0, dtype=np.int64), np.empty(0), np.empty(0)
        for key in sorted(self.later_used.keys() | self.later_found.keys()):
            reach, used = self.later_used.get(key, empty[:2])
            found, sent, trigger = self.later_found.get(key, empty)
            if not (np.array_equal(found, reach) and np.array_equal(sent, used)):
                same = int(np.count_nonzero(_matches(reach, used, found, sent)[0]))
                left += found.size + reach.size - 2 * same
            self.later_assumed[key] = (found, sent, trigger)
        for run in self.runs:
            if run.calls_at is None:
                continue
            found = run.calls_found if run.calls_found is not None else run.calls_at
            left += int(np.count_nonzero(found != run.calls_at))   # (inf == inf: settled)
            self.calls_assumed[id(run.node)] = (run.called, found)
        self.unsettled.append(left)
        return left == 0

    def _refusals_settled(self, gated: set[int]) -> bool:
        """Whether the requests rejected at gated nodes (see :func:`_gated_nodes`) are those
        this pass assumed; if not, the next pass assumes this pass's.

        A rejected request makes no calls and moves no binding, but which requests are
        rejected depends on when the others' calls resolve. A pass takes a guess (at
        first: none rejected), routes the others, and serves every agent; a request it
        assumed rejected but admits leaves at once (a placeholder: no calls, no answers).
        Everything before the first request the guess got wrong saw the right requests,
        so the pass decides that one right too: each pass extends the right prefix, and
        the passes end, exactly, when a pass rejects the requests it assumed (typically a
        few passes: the placeholders keep each wrong guess's effect local). Requests
        arriving at or after the horizon are never assumed rejected (nothing recorded
        depends on them). Only ties at one instant (deterministic times) could make the
        guesses cycle: then :meth:`_requests` raises :class:`~promisesim.errors.EngineError`.
        """
        settled = True
        wrong = 0   # requests guessed wrong (rejected or not)
        for run in self.runs:
            if id(run.node) not in gated:
                continue
            # turned away on arrival (those arriving before the horizon); not those that left
            # at a wait limit, which made their calls (they leave after they arrived)
            rejected = run.reach[(run.outcome == REJECTED) & (run.done == run.arrival)]
            before = self.refused.get(id(run.node))
            if before is None or not np.array_equal(before, rejected):
                settled &= before is None and rejected.size == 0
                self.refused[id(run.node)] = rejected
                wrong += rejected.size if before is None else \
                    np.setxor1d(before, rejected, assume_unique=True).size
        self.refusals_left.append(wrong)
        return settled
