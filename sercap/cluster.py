"""Dask distributed as sercap's execution backend for parallel work.

A *cluster spec* names where tasks run:

  ``local:N``           a ``dask.distributed.LocalCluster`` of N worker processes, one thread
                        each, started here and closed when the work is done;
  ``tcp://HOST:PORT``   a running scheduler (``dask scheduler`` + ``dask worker`` on other
                        machines, or one from dask-jobqueue); only the client is closed.

``SERCAP_CLUSTER`` gives the spec when no option does. Workers must see the audio and the
warehouse folder by the same paths as the client (a shared filesystem).

Dask is an optional extra (``pip install "sercap[cluster]"``); nothing here imports it at
module level, so sercap works without it until a cluster is asked for.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from sercap.errors import SercapError

#: Environment variable read when no ``--cluster`` is given.
ENV_VAR = "SERCAP_CLUSTER"
#: Environment of every LocalCluster worker: one thread for BLAS/OpenMP/numba.
WORKER_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
}
INSTALL_HINT = 'pip install "sercap[cluster]"'


@dataclass(frozen=True)
class ClusterSpec:
    """Where tasks run: ``kind`` is ``"local"`` (``workers`` processes) or ``"address"``."""

    kind: str
    workers: int = 0
    address: str = ""

    def __str__(self) -> str:
        return f"local:{self.workers}" if self.kind == "local" else self.address


#: The port ``dask scheduler`` listens on unless told otherwise: an address without one.
SCHEDULER_PORT = 8786


def parse_spec(text: str) -> ClusterSpec:
    """Parse ``local:N`` or a scheduler address (``tcp://HOST:PORT``, ``tls://…``; without
    a port, ``dask scheduler``'s default 8786).

    >>> parse_spec("tcp://10.0.0.5").address, parse_spec("tcp://h:9000/").address
    ('tcp://10.0.0.5:8786', 'tcp://h:9000')

    Parameters
    ----------
    text : str
        The spec as the user wrote it.

    Returns
    -------
    ClusterSpec

    Raises
    ------
    SercapError
        When ``text`` is neither form.
    """
    value = text.strip()
    match = re.fullmatch(r"local:(\d+)", value)
    if match:
        n = int(match.group(1))
        if n < 1:
            raise SercapError(f"cluster {text!r}: a local cluster needs at least 1 worker")
        return ClusterSpec("local", workers=n)
    address = re.fullmatch(r"(tcp|tls|ucx|inproc)://[^\s/]+?(?::(\d+))?/?", value)
    if address:
        port = address.group(2)
        if port is not None and not 0 < int(port) < 65536:
            raise SercapError(f"cluster {text!r}: port {port} is not a port (1 to 65535)")
        if port is None and address.group(1) in ("tcp", "tls"):  # Dask's client wants one
            return ClusterSpec("address", address=f"{value.rstrip('/')}:{SCHEDULER_PORT}")
        return ClusterSpec("address", address=value.rstrip("/"))
    raise SercapError(
        f"cluster {text!r}: expected local:N (N worker processes here) or a scheduler "
        "address tcp://HOST:8786"
    )


def resolve_spec(option: str | None, env: dict[str, str] | None = None) -> ClusterSpec | None:
    """The spec from ``option``, else from ``$SERCAP_CLUSTER``, else ``None`` (no cluster).

    Parameters
    ----------
    option : str or None
        The ``--cluster`` value.
    env : dict, optional
        Environment to read ``SERCAP_CLUSTER`` from (default ``os.environ``).
    """
    env = os.environ if env is None else env
    if option:
        return parse_spec(option)
    text = env.get(ENV_VAR, "").strip()
    if not text:
        return None
    try:
        return parse_spec(text)
    except SercapError as exc:  # (a value nobody typed: say where it came from)
        raise SercapError(f"${ENV_VAR}: {exc.message}", hint=exc.hint) from exc


def worker_threads(requested: int) -> int:
    """The threads a task may give its model: on a Dask worker at most the worker's own
    thread count, elsewhere ``requested``.

    A task asking for more threads than its worker has oversubscribes the machine (every
    worker runs a task at once): LightGBM's OpenMP threads then spin against each other and
    a bench on ``local:2`` ran 2.2x slower than in one process.
    """
    try:
        from distributed import get_worker
    except ImportError:
        return requested
    try:
        worker = get_worker()
    except ValueError:  # not in a worker
        return requested
    return max(1, min(requested, worker.state.nthreads))


def cluster_threads(client: Any) -> int:
    """The threads of ``client``'s workers now (at least 1): what the work is divided by.
    An adaptive cluster that has not started its workers yet counts as one.

    >>> class Client:
    ...     def nthreads(self):
    ...         return {"tcp://a:1": 1, "tcp://b:1": 2}
    >>> cluster_threads(Client())
    3
    """
    return max(1, sum(client.nthreads().values()))


def _probe_scheduler(address: str, timeout_s: float) -> None:
    """One line naming the cause for a tcp:// address whose host is unknown (at once: that
    does not mend itself) or whose port refuses connections for ``timeout_s`` (a scheduler
    started a moment ago may not listen yet): Dask's client retried both until its timeout,
    then said only that no scheduler answered in time. Anything else is left to it."""
    import socket

    match = re.fullmatch(r"tcp://\[?([^\]/]+?)\]?:(\d+)/?", address)
    if not match:
        return
    host, port = match.group(1), int(match.group(2))
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection((host, port), timeout=min(3.0, timeout_s)).close()
            return
        except socket.gaierror as exc:
            raise SercapError(f"cluster {address}: unknown host {host!r} ({exc.strerror})") from exc
        except ConnectionRefusedError as exc:
            if time.monotonic() >= deadline:
                raise SercapError(
                    f"cluster {address}: nothing listens on port {port} of {host} (refused "
                    f"for {timeout_s:.0f} s; start a scheduler with `dask scheduler`)"
                ) from exc
            time.sleep(0.25)
        except OSError:
            return  # unreachable or slow: Dask's own timeout and message


def import_distributed() -> Any:
    """``dask.distributed``, or a one-line SercapError naming the extra to install."""
    try:
        import dask.distributed as distributed
    except ImportError as exc:
        raise SercapError(f"running on a cluster needs Dask; {INSTALL_HINT}") from exc
    return distributed


@contextmanager
def open_client(
    spec: ClusterSpec | str, timeout_s: float = 30.0, worker_wait_s: float | None = None
) -> Iterator[Any]:
    """A ``dask.distributed.Client`` for ``spec``; closes what it started on exit.

    ``local:N`` starts a LocalCluster of N processes (one thread each, no dashboard) and
    closes both cluster and client; an address connects to a running scheduler and closes
    only the client (the scheduler and its workers keep running).

    Parameters
    ----------
    spec : ClusterSpec or str
        Parsed spec or its text.
    timeout_s : float
        How long to wait for a remote scheduler before giving up, and for its first worker
        before saying so on stderr (adaptive and batch-queued clusters start workers late).
    worker_wait_s : float, optional
        Then how much longer to wait for a worker before giving up (default: until one
        joins or Ctrl-C).

    Yields
    ------
    dask.distributed.Client
    """
    if isinstance(spec, str):
        spec = parse_spec(spec)
    distributed = import_distributed()
    cluster = None
    if spec.kind == "local":
        from sercap._spawn import main_not_rerun, sigint_ignored, start_resource_tracker

        # The workers are spawned processes: they must not re-run the caller's script (a
        # `python cli.py` would install its Ctrl-C handler in each, which then printed the
        # "interrupted" line once per worker) and they leave Ctrl-C to this process, which
        # cancels their tasks and closes the cluster. The HTTP server the scheduler always
        # runs takes a free port (8787, Dask's default, warns when another run holds it).
        start_resource_tracker()  # a closed terminal must not kill it (see there)
        with main_not_rerun(), sigint_ignored():
            cluster = distributed.LocalCluster(
                n_workers=spec.workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
                env=dict(WORKER_ENV),
                # a task's error comes back to this process, which says it in one line; the
                # workers' own "Compute Failed" blocks printed before it
                silence_logs=logging.CRITICAL,
            )
        client = distributed.Client(cluster)
        # a worker the nanny restarts later (one that died) starts after the block above:
        # this plugin makes it leave Ctrl-C to the client too
        client.register_plugin(_sigint_ignoring_plugin(distributed), name="sercap-sigint")
    else:
        _probe_scheduler(spec.address, timeout_s)
        started = time.monotonic()
        try:
            client = distributed.Client(spec.address, timeout=timeout_s)
        except Exception as exc:  # refused, timed out, or a reply no scheduler gives (a
            # server of another protocol: its bytes read as a frame length, MemoryError)
            waited = time.monotonic() - started
            why = (  # a port that answers, but not as a Dask scheduler, fails at once
                f"no scheduler answered within {timeout_s:.0f} s"
                if waited >= 0.9 * timeout_s
                else f"no Dask scheduler there ({(str(exc).splitlines() or [''])[0][:120]})"
            )
            raise SercapError(
                f"cluster {spec.address}: {why} (start one with `dask scheduler`, workers "
                "with `dask worker ADDRESS`)"
            ) from exc
        try:  # a scheduler without workers would leave every task waiting, silently
            client.wait_for_workers(1, timeout=timeout_s)
        except (OSError, TimeoutError):
            print(
                f"waiting: cluster {spec.address} has no worker yet ({timeout_s:.0f} s); "
                f"start some with `dask worker {spec.address}` (Ctrl-C to stop)",
                file=sys.stderr,
            )
            try:
                client.wait_for_workers(1, timeout=worker_wait_s)
            except (OSError, TimeoutError) as exc:
                client.close()
                raise SercapError(
                    f"cluster {spec.address}: no worker joined the scheduler in "
                    f"{timeout_s + (worker_wait_s or 0):.0f} s; start some with "
                    f"`dask worker {spec.address}`"
                ) from exc
    try:
        with _quiet_client_log():
            try:
                yield client
            finally:
                client.close()
    finally:
        if cluster is not None:
            cluster.close()


@contextmanager
def _quiet_client_log() -> Iterator[None]:
    """Keep Dask's client logger quiet while sercap holds a client.

    When a remote scheduler dies mid-run, the client retries for its timeout, then logs
    "Failed to reconnect" and two asyncio tracebacks (~25 lines) before the cancelled task
    reaches :func:`map_tasks`, which says it in one line. Restored on exit.
    """
    logger = logging.getLogger("distributed.client")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def map_tasks(
    client: Any,
    fn: Callable[[Any], Any],
    items: Iterable[Any],
    progress: bool | None = None,
    unit: str = "task",
    pure: bool = False,
    retries: int = 0,
) -> Iterator[Any]:
    """Submit ``fn(item)`` for every item and yield the results as they complete.

    A task whose worker dies is rerun by Dask on another worker (up to the scheduler's
    ``allowed-failures``); ``retries`` additionally reruns a task that *raised*. On
    Ctrl-C (or when the consumer stops early) the pending tasks are cancelled and
    KeyboardInterrupt propagates.

    Parameters
    ----------
    client : dask.distributed.Client
    fn : callable
        A picklable top-level function of one argument.
    items : iterable
        Its arguments (all submitted at once; keep them small).
    progress : bool or None
        A tqdm bar of tasks done / total on stderr; ``None``: only when stderr is a terminal.
    unit : str
        The bar's unit.
    pure : bool
        Whether Dask may deduplicate equal calls (off: every item is its own task).
    retries : int
        Reruns of a task that raised an exception.

    Yields
    ------
    object
        ``fn(item)``, in completion order. A task's exception is re-raised here.
    """
    distributed = import_distributed()
    futures = [client.submit(fn, item, pure=pure, retries=retries) for item in items]
    bar = _bar(len(futures), progress, unit)
    try:
        for future in distributed.as_completed(futures):
            result = future.result()
            future.release()
            if bar is not None:
                bar.update(1)
            yield result
    except BaseException as exc:  # KeyboardInterrupt, a task's error, or GeneratorExit
        # every future, finished ones too: a finished result nobody will read still holds
        # its key (and memory) on the cluster for as long as a traceback keeps this frame
        lost = _scheduler_lost(exc)
        with suppress(Exception):  # without a scheduler there is nothing left to cancel
            client.cancel(futures)
        futures.clear()
        if lost is not None:  # the scheduler, or every worker holding a task's input
            raise SercapError(
                f"cluster: lost the scheduler or a task's input ({lost}); what was stored "
                "stays (extract's finished chunks, tune's finished trials), a train or bench "
                "run is stored only once all its folds are done",
                hint="run the same command again once the scheduler and workers are back",
            ) from exc
        raise
    finally:
        if bar is not None:
            bar.close()


def _sigint_ignoring_plugin(distributed: Any) -> Any:
    """A WorkerPlugin that ignores SIGINT in each worker process of a local cluster, and
    keeps quiet about the tasks the client cancels then (Dask logs a warning per task)."""

    class IgnoreSigint(distributed.WorkerPlugin):
        def setup(self, worker: Any) -> None:
            import logging
            import signal
            import threading

            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGINT, signal.SIG_IGN)
            logging.getLogger("distributed.worker.state_machine").setLevel(logging.ERROR)

    return IgnoreSigint()


def _scheduler_lost(exc: BaseException) -> str | None:
    """Why the connection to the scheduler broke, when ``exc`` says it did (a task that was
    cancelled because the scheduler went away, a closed comm), else None."""
    from concurrent.futures import CancelledError

    from distributed.comm.core import CommClosedError

    if isinstance(exc, CommClosedError):
        return "connection closed"
    if isinstance(exc, CancelledError):
        text = str(exc).strip()
        return getattr(exc, "reason", None) or (text.splitlines()[0] if text else "cancelled")
    return None


def _bar(total: int, enabled: bool | None, unit: str) -> Any:
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, dynamic_ncols=True, leave=True)
