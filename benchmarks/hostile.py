"""Hostile inputs through the real ``promisesim`` executable: each case must end in exit 2 with
one line, fast and small.

    python -m benchmarks.hostile

Each case is a small scenario with one extreme value (a horizon of 1e308, a rate of 1e30, a
million members, servers of 2**64, an interval of 1e-9, a wrong type, ...) or an extreme
argument, run in a fresh process under a 4 GiB address-space limit and a 60 s timeout. The
table gives the exit status, the seconds, the peak resident memory (where ``/usr/bin/time`` is
installed) and the last line of standard error.
"""

from __future__ import annotations

import copy
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

BASE = {
    "name": "probe",
    "agents": [{"name": "db", "service_time": 0.01, "servers": 2},
               {"name": "api", "service_time": 0.02}, {"name": "users"}],
    "super_agents": [{"name": "pool", "size": 2, "member": {"service_time": 0.01}}],
    "promises": [
        {"name": "q", "promiser": "db", "promisee": "api", "body": {"latency": {"deadline": 1}}},
        {"name": "p", "promiser": "api", "promisee": "users", "body": {"latency": {"deadline": 1}},
         "conditions": ["q"]}],
    "workloads": [{"promise": "p", "rate": 1}],
    "run": {"horizon": 100, "replications": 2, "seed": 1},
}


def _with(change):
    data = copy.deepcopy(BASE)
    change(data)
    return data


def _inject(data, entry):
    data.setdefault("injections", []).append(entry)


CASES = {
    "horizon 1e15": _with(lambda d: d["run"].update(horizon=1e15)),
    "horizon 1e308": _with(lambda d: d["run"].update(horizon=1e308)),
    "rate 1e30": _with(lambda d: d["workloads"][0].update(rate=1e30)),
    "replications 1e9": _with(lambda d: d["run"].update(replications=10**9)),
    "super-agent size 1e6": _with(lambda d: d["super_agents"][0].update(size=10**6)),
    "servers 1e18": _with(lambda d: d["agents"][0].update(servers=10**18)),
    "servers 2**64": _with(lambda d: d["agents"][0].update(servers=2**64)),
    "maintenance interval 1e-9": _with(lambda d: d["agents"][0].update(
        failures={"time_to_failure": 100, "maintenance": {"interval": 1e-9}})),
    "autoscaler interval 1e-9": _with(lambda d: _inject(
        d, {"autoscaler": {"target": "pool", "interval": 1e-9}})),
    "list for a mapping": _with(lambda d: d["super_agents"][0].update(member=[1, 2])),
    "text time in scale_to": _with(lambda d: _inject(
        d, {"scale_to": {"target": "pool", "size": 3, "at": "soon"}})),
    "list in about": _with(lambda d: d["promises"][0].update(about=["x"])),
    "mapping as a name": _with(lambda d: d["agents"][2].update(name={"a": 1})),
    "exponential mean 1e308": _with(lambda d: d["agents"][0].update(
        service_time={"exponential": {"mean": 1e308}})),
}
ARGUMENTS = {"--seed -1": ["--seed", "-1"], "--replications 1000000": ["--replications", "1000000"]}


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


def main() -> int:
    executable = shutil.which("promisesim") or str(Path(sys.executable).parent / "promisesim")
    timer = os.path.exists("/usr/bin/time")
    folder = Path(tempfile.mkdtemp())
    rows, bad = [], 0
    cases = [(name, data, []) for name, data in CASES.items()] + \
            [(name, BASE, args) for name, args in ARGUMENTS.items()]
    for name, data, args in cases:
        path = folder / "case.yaml"
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        command = [executable, "run", str(path), "--no-progress", *args]
        if timer:
            command = ["/usr/bin/time", "-f", "%M", *command]
        start = time.perf_counter()
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=60,
                                  preexec_fn=_limit)
        except subprocess.TimeoutExpired:
            rows.append((name, "hang", 60.0, float("nan"), ""))
            bad += 1
            continue
        seconds = time.perf_counter() - start
        lines = done.stderr.strip().splitlines()
        rss = float("nan")
        if timer and lines and lines[-1].isdigit():
            rss = int(lines.pop()) / 1024
            if lines and lines[-1].startswith("Command exited"):
                lines.pop()
        ok = done.returncode == 2 and len(lines) == 1
        bad += not ok
        rows.append((name, done.returncode, seconds, rss, lines[-1] if lines else ""))
    print(f"{'case':28s} {'exit':>4s} {'s':>5s} {'MiB':>6s}  last line of stderr")
    for name, status, seconds, rss, line in rows:
        print(f"{name:28s} {status!s:>4s} {seconds:5.1f} {rss:6.0f}  {line[:90]}")
    print(f"{len(rows) - bad} of {len(rows)} cases: exit 2 with one line")
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
