"""Walks of a model's call trees that the vector engine's stages share."""

from __future__ import annotations

from ...model.spec import CallCondition, CallNode, ModelSpec


def _gated_nodes(spec: ModelSpec) -> set[int]:
    """Nodes (``id``) at an agent with a capacity limit whose requests act before they queue:
    call others, or move a push-mode choice's binding. A rejected request does neither, so
    which requests reach the nodes below (and the bindings) depend on the agent's queue."""
    limited = {i for i, a in enumerate(spec.agents) if a.limit is not None}
    found: set[int] = set()

    def acts(item: CallNode | CallCondition) -> bool:
        if isinstance(item, CallNode):
            return item.is_request
        return (item.rule == "any" and item.mode == "push") or any(acts(i) for i in item.items)

    def walk(node: CallNode) -> None:
        agent = spec.agent_index[spec.promises[node.promise].promiser]
        if agent in limited and node.condition is not None and acts(node.condition):
            found.add(id(node))
        for child in _latency_callees(node.condition):
            walk(child)

    if limited:
        for tree in spec.call_trees:
            walk(tree)
    return found


def _tree_size(item: CallNode | CallCondition) -> int:
    """Request records a request makes in ``item``, at most: a request calls one item of
    an any-of or a split, every item of the others, and every attempt of a call."""
    if isinstance(item, CallNode):
        one = 1 + (0 if item.condition is None else _tree_size(item.condition))
        return one * (1 + len(item.retries))
    sizes = [_tree_size(i) for i in item.items]
    return max(sizes, default=0) if item.rule in ("any", "split") else sum(sizes)


def _latency_callees(item: CallNode | CallCondition | None) -> list[CallNode]:
    """Latency nodes a request calls directly (through nested conditions), each attempt of
    a call a node."""
    if item is None:
        return []
    if isinstance(item, CallNode):
        return [item, *item.retries] if item.is_request else []
    out: list[CallNode] = []
    for i in item.items:
        out.extend(_latency_callees(i))
    return out


def _agent_order(spec: ModelSpec) -> tuple[list[int], list[str]]:
    """Agents, callees before callers; and a call cycle between agents, if any."""
    promiser = [spec.agent_index[p.promiser] for p in spec.promises]
    edges: dict[int, set[int]] = {i: set() for i in range(len(spec.agents))}

    def walk(node: CallNode) -> None:
        for child in _latency_callees(node.condition):
            edges[promiser[node.promise]].add(promiser[child.promise])
            walk(child)

    for tree in spec.call_trees:
        walk(tree)
    order: list[int] = []
    state: dict[int, int] = {}

    def visit(a: int, stack: list[int]) -> list[str]:
        if state.get(a) == 2:
            return []
        if state.get(a) == 1:
            cycle = stack[stack.index(a):] + [a]
            return [spec.agents[i].name for i in cycle]
        state[a] = 1
        for b in sorted(edges[a]):
            found = visit(b, stack + [a])
            if found:
                return found
        state[a] = 2
        order.append(a)
        return []

    for a in range(len(spec.agents)):
        cycle = visit(a, [])
        if cycle:
            return [], cycle
    return order, []




def _sends_later(spec: ModelSpec) -> bool:
    """Whether a request of the model can send a call after others ended: a retry, a
    fallback, a hedge's copy (found in passes: see :meth:`.later.LaterCalls._later`)."""
    return bool(spec.features & {"retries", "fallbacks", "hedged requests"})
