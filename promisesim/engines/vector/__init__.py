"""The vectorised engine: the reference engine's semantics, computed with numpy over whole batches.

It draws the very random numbers the reference engine draws (keyed streams,
:mod:`promisesim.random`) and computes the same outcomes without an event
loop over individual events:

* **Agent states**: each agent's failure/repair cycle is a renewal process
  whose instants are the cumulative sums of its drawn durations, computed for
  every replication of a batch at once (drawn in blocks, topped up for the
  replications that need more). Scheduled outages are merged in by sorting
  breakpoints; the up/down state follows from running counts.
* **Requests**: a request's path through the call tree is fixed at its
  arrival instant (who is up, which provider a choice picks), so the set of
  requests reaching each node is computed top down with boolean masks. Then
  agents are processed callees first: a node's calls are resolved from its
  children's outcomes (the k-th fastest kept answer against the
  (n-k+1)-th failure, by min/max), and every request that enters an agent's
  FIFO queue is served by a recursion advanced for many busy periods (or, with
  many replications, all replications) at once: one iteration per position in
  a busy period, not per event. A crash empties the queue: requests whose
  answer would come at or after it are lost.
* Agent states at query instants (is it up, when does it next go down) are
  found by a binary search in each replication's change instants.
* Work is done in cache-sized blocks where it can be (renewal draws), and
  replications in batches of a bounded number of records.
* Memory: without request records, a replication with many requests is
  computed in windows of arrival time, carrying each queue's state (its
  servers' free instants) and the requests not yet final from window to
  window (:mod:`.windows`); without changes of state, each
  batch is reduced to the promises' metrics before the next
  (:func:`promisesim.results.summarise`). Peak memory then does not grow with
  the horizon.

Choices (first or random, with a detection delay), version splits and
random hops are fixed at a request's arrival too, by the same keyed draws;
start-ups after scaling are outages of drawn length, and draining outages
stop arrivals without emptying the queue (crashes are taken from the states
without them).

A timeout is applied where calls are resolved: an answer (with its way
back) later than the send instant plus the caller's timeout is a failure at
that sum, computed with the reference engine's floating-point operations.

Request-level failures are fixed where a request joins a queue: the
degradations under way multiply its drawn service time before the queue
kernels run, and its answer is an error by its keyed draw against the error
probability at that instant (error bursts are an alternating renewal process,
looked up like agent states). A partition is found while routing: requests it
cuts off are set apart like requests to a promiser that is down.

A push-mode choice carries its binding from request to request: each
request maps the binding before it to the one after it, and the bindings are
a prefix composition of those maps, computed by doubling.

A queue with a capacity limit, load-dependent slowdown or instances started
on demand (``keep_alive``) is an event loop (:mod:`.events`) whose every step
handles the next event of every queue (lane) of the batch at once: an arrival
(admitted or rejected against the limit, counting requests still waiting for
their calls), a request whose calls resolved (it joins the FIFO queue, in
order of that instant, or leaves) or a departure. Its lanes are stretches
where the queue is empty before and after (:mod:`.lanes`): cut where the same
queue without its limit is empty (surely empty then), and elsewhere guessed
(every request finds it empty), served, and merged where a lane's requests
had not all left when the next arrived, until every cut is proven. Where
requests join as they arrive and none slows the others, each step takes the
next request of every lane rather than the next event (the Kiefer-Wolfowitz
recursion, the limit counting those not yet left). Instances
started on demand keep when each was freed: a request takes an idle running
one by the placement, or starts one and waits its cold start; their starts
and stops follow from which instance each request took. A request such an agent rejects makes no calls (and moves
no push-mode binding), so which requests reach the agents below it depends
on its queue: the requests are routed and served in passes, each assuming
the rejections of the one before (at first none), until a pass rejects
exactly the requests it assumed; each pass decides right at least up to the
first wrong assumption, and it takes a few passes in practice
(:meth:`.batch._Batch._refusals_settled`); where each pass settles only a few
(an overloaded agent behind the limit), the batch goes to the reference engine.

An agent that calls on taking a server or after serving (order ``"around"``
or ``"before"``) calls at an instant its own queue decides, and (around) its
queue depends on how long its calls take: the passes also assume when each
such request calls (at first: on arrival), route and resolve the calls made
then, serve the queue, and end when a pass finds the instants it assumed
(:meth:`.batch._Batch._calls_settled`). A server held around calls is pinned
(:data:`.fifo.Pin`): a request that takes it at the assumed instant leaves at
the answer plus its own service, as the reference engine's clock adds them.
Calls made at one instant reach their provider in the order their requests
reached the caller (a caller whose calls failed at once frees its server to
the next request, which calls at that instant). When the passes settle only a
few requests at a time (a caller's busy periods chained through a provider
whose response depends on when it is called: one shared with other traffic and
overloaded, or slowed for a while), the batch is handed to the reference
engine, which gives the same results sooner; ``Result.engine`` then says
``reference`` (:data:`.batch._MAX_CALL_PASSES`, :data:`.batch._STALLED_SHARE`).

A retry is a request of its own to the retry's node (see
:class:`~promisesim.model.spec.CallNode`), sent when the attempt before it
failed in a way the caller retries, after the backoff; which requests retry,
and when, depends on the provider's queue, which holds the retries. The
passes assume the retries the pass before found (at first none), route and
serve them with the other requests, and end when a pass finds the retries it
assumed: typically one pass more than the attempts a request makes
(:meth:`.later.LaterCalls._retries`). A fallback's items and a hedge's copies
are found the same way (:meth:`.later.LaterCalls._fallback`,
:meth:`.later.LaterCalls._hedged`); an answer kept only thanks to a fallback is
carried up as degraded. A caller that crashes sends no such call after the
crash (the call then ends when it would have gone).

An autoscaler's feedback (its decisions depend on its members' busy time, which
depends on its earlier decisions) is found as a fixed point of whole runs
(:mod:`.autoscale`): guess the decisions, run the batch with
the membership they imply (per-replication outages), recompute the decisions
from the busy time the queues logged, and repeat until they reproduce.

Features: every feature of the reference engine, except the defences whose
state is shared between a caller's calls (retry budgets, circuit breakers),
hedges over nested conditions, and three combinations: an agent calling around
its service with a ``slowdown``, one calling after it with a ``limit``, and
an autoscaler in a model with such orders. These are left to the reference
engine (``engine="auto"`` picks it; naming this engine is an error that names
them). Models where a request
can call back into an agent it came through (an agent-level call cycle, for
example a promise of ``api`` conditioned on a promise of ``db`` that is
conditioned on another promise of ``api``) are left to the reference engine:
naming this engine for one raises :class:`~promisesim.errors.EngineError`
naming the cycle, and ``engine="auto"`` uses the reference engine.

How the results differ from the reference engine's:

* Same draws, same results: with continuous distributions every request's
  outcome, every state change and every count is identical; latencies and
  instants are computed with the same floating-point operations in the same
  order, so they are equal bit for bit.
* Ties: when several requests enter one agent's queue at the same instant
  (possible only with deterministic or empirical times), this engine serves
  them in the order (workload, position in the call tree, arrival index);
  the reference engine serves them in SimPy's event order. Counts can then
  differ; tests of exact agreement use continuous service times. A crash
  ends the requests inside an agent at one instant, and where their callers
  go on at once (a fallback, a retry without backoff) this engine orders
  them as the reference engine does (:meth:`.later.LaterCalls._later`); a
  backoff without jitter sends all their retries at one later instant, in
  an order that can differ, and at an agent with a load-dependent slowdown,
  requests joining its queue at one instant can count each other
  differently. An
  autoscaler with no ``delay`` has one more (see
  :mod:`.autoscale`).

The package's modules are the pipeline's stages, in order; each imports only
the kernels, the spec and the stages before it, and nothing imports the engine
back:

* :mod:`.engine`: :class:`VectorEngine`, which sizes batches of replications
  and runs each through the stages (:mod:`.autoscale` for autoscalers, which is
  handed the batch to rerun);
* :mod:`.batch`: one batch's shared state and the passes over its requests;
* :mod:`.states`: agent states; :mod:`.arrivals`: workload arrivals;
  :mod:`.routing`: paths top down and calls resolved bottom up (with
  :mod:`.later` for calls sent after others ended, over the node runs of
  :mod:`.runs`); :mod:`.queues`:
  FIFO service, with the queue kernels of :mod:`.fifo` and :mod:`.events`;
  :mod:`.records`: request records and counts; :mod:`.windows`: time windows and
  carry-over for long runs;
* :mod:`.kernels` and :mod:`.structure`: array kernels and call-tree walks the
  stages share.
"""

from .engine import VectorEngine

__all__ = ["VectorEngine"]
