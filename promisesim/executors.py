"""Where experiments run: serially, on local processes, or on a Dask cluster.

One place for what :func:`promisesim.sweep.sweep` accepts as an executor (a
name, a ``distributed.Client`` or a ``concurrent.futures.Executor``) and for
running independent tasks on it. Results never depend on the executor: each
task is plain data that names its own seed.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import sys
import uuid
import warnings
from collections.abc import Callable
from typing import Any

from .errors import ScenarioError

__all__ = ["EXECUTORS"]

#: Executors by name; :func:`~promisesim.sweep.sweep` also takes a ``distributed.Client`` or a
#: ``concurrent.futures.Executor``.
EXECUTORS = ("serial", "local", "dask")

#: Called with each task's index and result as it finishes.
_Done = Callable[[int, Any], None]

def _default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def _watch(pid: int) -> None:
    """A worker process's initializer: exit as soon as process ``pid`` (the one that started
    the pool) is gone, killed or crashed, rather than wait for work that will never come."""
    import threading
    import time

    def watch() -> None:
        while True:
            time.sleep(0.5)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:   # the number now belongs to another user's process
                os._exit(1)

    threading.Thread(target=watch, name="promisesim-parent-watch", daemon=True).start()


def pool(workers: int) -> concurrent.futures.ProcessPoolExecutor:
    """A pool of ``workers`` processes (forkserver or spawn) that end with this process."""
    return concurrent.futures.ProcessPoolExecutor(max_workers=workers,
                                                  mp_context=_process_context(),
                                                  initializer=_watch, initargs=(os.getpid(),))


def _process_context() -> Any:
    # An explicit context object: the global start method stays as the user set it. Not
    # "fork": forking a process that runs threads (tqdm's monitor, a Dask client) can
    # deadlock, and Python 3.14 stops defaulting to it.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _is_dask_client(executor: Any) -> bool:
    distributed = sys.modules.get("distributed")
    return distributed is not None and isinstance(executor, distributed.Client)


def _check_executor(executor: Any) -> None:
    if isinstance(executor, str):
        if executor not in EXECUTORS:
            raise ScenarioError(f"executor={executor!r}: expected one of {', '.join(EXECUTORS)}, "
                                "a distributed.Client or a concurrent.futures.Executor")
        if executor == "dask":
            _import_distributed()
    elif not (_is_dask_client(executor) or isinstance(executor, concurrent.futures.Executor)):
        raise ScenarioError(f"executor={executor!r}: expected one of {', '.join(EXECUTORS)}, "
                            "a distributed.Client or a concurrent.futures.Executor")


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ImportError("executor='dask' needs dask.distributed: "
                          "pip install 'promisesim[dask]'") from None
    return distributed


def _run_futures(run: Callable[[Any], Any], executor: concurrent.futures.Executor,
                 tasks: list[tuple[int, Any]], done: _Done, own: bool) -> None:
    futures = {executor.submit(run, task): index for index, task in tasks}
    try:
        for future in concurrent.futures.as_completed(futures):
            done(futures[future], future.result())
    except BaseException:
        for future in futures:
            future.cancel()
        if own:
            _stop(executor)
        raise
    if own:
        executor.shutdown(wait=True)


def _stop(pool: concurrent.futures.Executor) -> None:
    """Stop a process pool of ours at once (on an error or Ctrl-C), not after its running points.

    Without this, the interpreter's exit would wait for the points in progress, whose results
    are thrown away anyway.
    """
    terminate = getattr(pool, "terminate_workers", None)  # Python 3.14+
    if terminate is not None:
        terminate()
        return
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()


def _run_dask(run: Callable[[Any], Any], client: Any, tasks: list[tuple[int, Any]], done: _Done,
              name: str) -> None:
    distributed = _import_distributed()
    token = uuid.uuid4().hex
    futures = [client.submit(run, task, key=f"promisesim-{name}-{token}-{index}", pure=False)
               for index, task in tasks]
    positions = {future.key: index for future, (index, _) in zip(futures, tasks)}
    try:
        for future in distributed.as_completed(futures):
            done(positions[future.key], future.result())
    except BaseException:
        client.cancel(futures)
        raise


def execute(run: Callable[[Any], Any], executor: Any, workers: int, tasks: list[tuple[int, Any]],
            done: _Done, name: str = "task") -> None:
    """Run ``run(task)`` for every ``(index, task)`` of ``tasks`` on ``executor`` (checked
    by :func:`_check_executor`) with up to ``workers`` processes, calling ``done(index,
    result)`` as each finishes (in any order). ``run`` and the tasks must pickle for any
    executor but ``"serial"``; ``name`` goes into Dask's task keys."""
    if not tasks:
        return
    if _is_dask_client(executor):
        _run_dask(run, executor, tasks, done, name)
    elif isinstance(executor, concurrent.futures.Executor):
        _run_futures(run, executor, tasks, done, own=False)
    elif executor == "serial" or (executor == "local" and min(workers, len(tasks)) == 1):
        for index, task in tasks:  # one process is enough: spare the start-up of another
            done(index, run(task))
    elif executor == "local":
        _run_futures(run, pool(min(workers, len(tasks))), tasks, done, own=True)
    else:  # "dask": a cluster of our own, closed afterwards
        distributed = _import_distributed()
        with warnings.catch_warnings():
            # Without a dashboard the scheduler still serves /health on 127.0.0.1, at port 8787
            # if free: another cluster there only moves it, which is no news to the user.
            warnings.filterwarnings("ignore", message="Port .* is already in use", category=UserWarning)
            cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                               host="127.0.0.1", dashboard_address=None)
        try:
            with distributed.Client(cluster) as client:
                _run_dask(run, client, tasks, done, name)
        finally:
            cluster.close()

