"""Hostile scenario files through the command line: every case ends in results (exit 0) or in
one line naming what is wrong (exit 2); never a traceback, a hang or a memory blow-up.

The cases are the shipped examples, each with one to three mutations: a value anywhere in
the file replaced by a hostile one (NaN, infinities, huge and tiny numbers, wrong types, bad
names, deep nesting), a key removed, an unknown key added, a list entry repeated. The run
section is made small first (one replication, a short horizon) and ``--max-events`` keeps
each run cheap, so the mutations, not the traffic, decide what happens.

The default run is seeded and takes a few tens of seconds; ``pytest -m fuzz`` runs a longer
one (``PROMISESIM_FUZZ_CASES``, default 5,000 cases).
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import resource
import signal
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import promisesim as ps
from promisesim.cli import main

EXAMPLES = {p.stem: yaml.safe_load(p.read_text(encoding="utf-8"))
            for p in sorted((Path(ps.__file__).parent / "examples").glob("*.yaml"))}
#: Seconds a case may take, and the memory it may add to the process.
TIME_BUDGET = 20
MEMORY_BUDGET = 2 << 30

HOSTILE = st.one_of(
    st.sampled_from([float("nan"), float("inf"), -float("inf"), -1, 0, 1, 0.5, -1e-300, 1e-300,
                     1e308, 1e30, 10**18, 2**64, -2**63, 1e-9, True, False, None, "", " ",
                     "x", "db", "a\x07b", "$\\frac{", "\u202e", [], {}, [1, 2],
                     {"a": 1}, [[[[[]]]]], {"exponential": {"mean": -1}},
                     {"exponential": {"mean": 1e-12}}, {"lognormal": {"mean": 1, "mu": 1}},
                     {"empirical": []}, {"uniform": {"low": 2, "high": 1}}]),
    st.integers(min_value=-10**20, max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)


def _paths(data, prefix=()):
    """Every path to a value in nested dicts and lists."""
    out = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            out += _paths(value, prefix + (key,))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out += _paths(value, prefix + (i,))
    return out


def _parent(data, path):
    for step in path[:-1]:
        data = data[step]
    return data


@st.composite
def scenarios(draw):
    name = draw(st.sampled_from(sorted(EXAMPLES)))
    data = copy.deepcopy(EXAMPLES[name])
    data["run"] = {"horizon": draw(st.sampled_from([20, 60, 300])), "replications": 1,
                   "seed": 1}
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = [p for p in _paths(data) if p]
        path = draw(st.sampled_from(paths))
        parent = _parent(data, path)
        action = draw(st.sampled_from(["replace", "replace", "replace", "remove", "unknown",
                                       "repeat"]))
        if action == "replace":
            parent[path[-1]] = copy.deepcopy(draw(HOSTILE))   # the samples are shared
        elif action == "remove":
            del parent[path[-1]]
        elif action == "unknown" and isinstance(parent, dict):
            key = draw(st.sampled_from(["servrs", "extra", "versions", "1"]))
            parent[key] = copy.deepcopy(draw(HOSTILE))
        elif action == "repeat" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[path[-1]]))
    return name, data


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout()


@contextlib.contextmanager
def _budget():
    """At most TIME_BUDGET seconds (SIGALRM) and MEMORY_BUDGET more bytes of address space."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as statm:
        size = int(statm.read().split()[0]) * resource.getpagesize()
    limit = size + MEMORY_BUDGET
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    old = signal.signal(signal.SIGALRM, _alarm)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    signal.alarm(TIME_BUDGET)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _run_case(tmp: Path, case) -> int | None:
    name, data = case
    path = tmp / "case.yaml"
    try:
        text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    except yaml.YAMLError:       # not writable as YAML: not a file anyone can hand over
        return None
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), _budget():
        try:
            status = main(["run", str(path), "--no-progress", "--max-events", "30000"])
        except SystemExit as exc:            # argparse's own refusals
            status = exc.code
    lines = err.getvalue().splitlines()
    assert status in (0, 2), f"{name}: exit {status}\n{err.getvalue()}\n{text}"
    if status == 2:
        assert len(lines) == 1 and lines[0].startswith("promisesim: error: "), \
            f"{name}: {err.getvalue()}\n{text}"
    else:
        assert out.getvalue().strip(), f"{name}: exit 0 without results\n{text}"
    return status


pytestmark = pytest.mark.skipif(not Path("/proc/self/statm").exists(),
                                reason="the memory budget reads /proc")


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.data_too_large])
@given(case=scenarios())
def test_hostile_files_end_in_results_or_one_line(tmp_path, case):
    _run_case(tmp_path, case)


@pytest.mark.fuzz
@settings(max_examples=int(os.environ.get("PROMISESIM_FUZZ_CASES", "5000")), deadline=None,
          database=None, suppress_health_check=list(HealthCheck))
@given(case=scenarios())
def test_many_more_hostile_files(tmp_path, case):
    _run_case(tmp_path, case)
