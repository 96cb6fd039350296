"""Runs suites case by case into a run folder: one failure never stops the sweep.

Each case is built, measured by :func:`bench.timing.time_back_to_back`, and written as one row the
moment it finishes. A case that fails (build error, XLA error, out of memory, NaN loss,
recompilation in the timed region, and anything else it raises: ``SystemExit``, its own
``KeyboardInterrupt``) becomes a row whose ``status`` says so and whose ``error`` holds the
first line of the message; the sweep goes on. A case that kills the process is found by the
next ``--resume`` (see :func:`bench.store.mark_in_flight`) and, after
:data:`bench.store.CRASH_LIMIT` deaths, recorded as ``crashed`` instead of tried again.
Only the user stops a run: Ctrl-C or SIGTERM (:func:`user_signals`).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import json
import logging
import multiprocessing
import os
import pathlib
import re
import signal
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator

import jax

import bench
from bench import plan, store
from bench.calibration import Calibration, bytes_moved, limit
from bench.config import RunConfig
from bench.sharding import shard_workload
from bench.structure import analyse_jaxpr
from bench.timing import (
    NOISY_SPREAD,
    Ready,
    RecompilationError,
    Timing,
    prepare,
    time_back_to_back,
    time_rounds,
    use_compile_cache,
)
from bench.timing import spread as timing_spread
from bench.workloads import SIZE_FIELDS, BuildContext, Case, Workload, suites


class HealthError(RuntimeError):
    def __init__(self, status: str):
        super().__init__(f"output failed its health check: {status}")
        self.status = status


@dataclasses.dataclass(frozen=True)
class Protocol:
    """The measuring protocol of a session, the same for every case: repeats, warm-up and
    rounds, devices, the calibration each row's limit comes from, traces, and what the cases
    are built for (sent whole to the worker process under ``--case-timeout``)."""

    run_id: str
    repeats: int
    warmup: int
    rounds: int  # of a sweep group's interleaved timing
    devices: int = 1
    calibration: Calibration | None = None  # the run's: each row gets its limit and efficiency
    trace_dir: str | None = None
    context: BuildContext = BuildContext()  # what the cases are built for: the run's folder

    @classmethod
    def of(
        cls, config: RunConfig, run_id: str, run_dir: pathlib.Path, calibration: Calibration
    ) -> Protocol:
        return cls(
            run_id=run_id,
            repeats=config.repeats,
            warmup=config.warmup,
            rounds=config.rounds,
            devices=config.devices,
            calibration=calibration,
            trace_dir=config.trace_dir,
            context=BuildContext(run_dir=run_dir),
        )


class Interrupted(KeyboardInterrupt):
    """The user stopped the run: Ctrl-C (SIGINT) or SIGTERM."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class _NotTheUsersStop(logging.Filter):
    """Drops a library's log of the user's Ctrl-C: JAX logs what a host callback raised,
    traceback and all ("jax.pure_callback failed"), before it returns it as its own error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], Interrupted))


_CALLBACK_LOG = logging.getLogger("jax._src.callback")
_watching = False  # user_signals() is active: a KeyboardInterrupt not from it is a case's own
_stop: int | None = None  # the signal the user sent, once they did
_after_stop: dict = {}  # the handlers a stopped run set aside (see restore_signals)


@contextlib.contextmanager
def user_signals() -> Iterator[None]:
    """While active, SIGINT and SIGTERM raise :class:`Interrupted` and are remembered, so a
    ``KeyboardInterrupt`` raised by a case's own code is told apart from the user's, and an
    interrupt swallowed inside a library still stops the run at the next case. (A signal that
    was ignored when the run started stays ignored; off the main thread nothing changes.)

    Once the user has stopped the run, a second signal (Ctrl-C pressed twice) changes
    nothing: it does not raise again inside the cleanup, and after the block the signals stay
    ignored, since the program is on its way out (an interrupt there would land anywhere,
    in a garbage collector's callback: "Exception ignored ... KeyboardInterrupt"). A caller
    that goes on in this process takes its handlers back with :func:`restore_signals`."""
    global _watching, _stop
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _watching:  # nested: the outer block watches
        with _users_own():
            yield
        return

    def handler(signum, frame):
        global _stop
        if _stop is not None:  # the run is stopping already
            return
        _stop = signum
        raise Interrupted(signum)

    restore_signals()  # (those of an earlier run in this process that the user stopped)
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(sig) is not signal.SIG_IGN:
            previous[sig] = signal.signal(sig, handler)
    _watching, _stop = True, None
    quiet = _NotTheUsersStop()
    _CALLBACK_LOG.addFilter(quiet)
    try:
        check_stop()  # a Ctrl-C before the handlers were in place
        with _users_own():
            yield
    finally:
        _CALLBACK_LOG.removeFilter(quiet)
        stopped = _stop is not None
        for sig, old in previous.items():
            signal.signal(sig, signal.SIG_IGN if stopped else old)
        if stopped:
            _after_stop.update(previous)
        _watching, _stop = False, None


@contextlib.contextmanager
def _users_own() -> Iterator[None]:
    """The user's interrupt as :class:`Interrupted`, also when a library wrapped it (raised in
    a host callback, it comes back as the runtime's error)."""
    try:
        yield
    except Exception:
        if _stop is not None:
            raise Interrupted(_stop) from None
        raise


def restore_signals() -> None:
    """Give back the SIGINT and SIGTERM handlers a run stopped by the user set aside (see
    :func:`user_signals`); nothing when none was."""
    while _after_stop:
        sig, old = _after_stop.popitem()
        signal.signal(sig, old)


def check_stop() -> None:
    """Raise :class:`Interrupted` if the user has stopped the run (an interrupt that a library
    swallowed: "Exception ignored in ..."), even before :func:`user_signals` (``bench.
    SIGNALLED``)."""
    if _stop is not None:
        raise Interrupted(_stop)
    if bench.SIGNALLED:
        raise Interrupted(bench.SIGNALLED[0])


def users(error: BaseException) -> bool:
    """Whether ``error`` (caught around a case) is the user stopping the run."""
    return _stop is not None or (isinstance(error, KeyboardInterrupt) and not _watching)


def classify(error: BaseException) -> str:
    if isinstance(error, HealthError):
        return error.status
    if isinstance(error, RecompilationError):
        return "recompiled"
    if isinstance(error, MemoryError):
        return "oom"
    text = str(error)
    if "RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower():
        return "oom"
    if re.search(r"^MemoryError\b", text, re.MULTILINE):  # raised in a host callback
        return "oom"
    return "error"


TRACEBACK = "Traceback (most recent call last):"


def first_line(error: BaseException) -> str:
    """``Type: message`` on one line. A message that embeds a Python traceback (an error in a
    host callback) gives the traceback's own last line, the error raised in the callback."""
    lines = [ln.rstrip() for ln in str(error).splitlines() if ln.strip()]
    text = lines[0].strip() if lines else ""
    for i, line in enumerate(lines):
        if line.endswith(TRACEBACK):
            inner = [ln for ln in lines[i + 1 :] if not ln[:1].isspace()]
            prefix = line[: -len(TRACEBACK)].strip()
            text = f"{prefix} {inner[-1].strip()}" if inner else prefix
            break
    return (f"{type(error).__name__}: {text}" if text else type(error).__name__)[:500]


def device_fields() -> dict:
    """Where an unsharded case runs: one device (data-parallel cases override n_devices)."""
    device = jax.devices()[0]
    return {"device_kind": device.device_kind, "platform": device.platform, "n_devices": 1}


def structure_columns(fn, args, log=print, while_trip_count=None, closed=None) -> dict:
    """Span, executed loop steps and work of the traced computation (see bench.structure);
    ``closed``: its jaxpr, where the caller has traced it already.

    A program the analyser cannot count is not a failed case: the row keeps its timing, its
    count columns stay empty, and its ``note`` says why.
    """
    try:
        closed = closed or jax.make_jaxpr(fn)(*args)
        s = analyse_jaxpr(closed, while_trip_count=while_trip_count)
    except Exception as e:
        note = f"span/work not counted: {first_line(e)}"
        log(f"    {note}")
        return {"note": note}
    return {"span_ops": s.span_ops, "steps_executed": s.steps_executed, "work_flops": s.work_flops}


def identity_row(case: Case, how: Protocol) -> dict:
    """The columns of ``case``'s row known before it is built: what it is and where it runs."""
    n_devices, reason = case.placement(how.devices)
    return {
        "run_id": how.run_id,
        "suite": case.suite,
        "model": case.model,
        "variant": case.variant,
        "mode": case.mode,
        **{f: case.sizes.get(f) for f in SIZE_FIELDS},
        "regime": case.regime,
        "seq_steps_pred": case.seq_steps_pred,
        "seed": case.seed,
        **device_fields(),
        "n_devices": n_devices,
        "note": reason or None,
    }


def _add_note(row: dict, note: str) -> None:
    if note:
        row["note"] = f"{row['note']}; {note}" if row.get("note") else note


def build_case(
    case: Case,
    how: Protocol,
    *,
    budget: plan.Budget | None = None,
    grouped: bool = False,
    log=print,
) -> tuple[dict, Workload | None]:
    """Build a case and count its structure: its row so far and its workload, or a row that
    says why it will not be timed (``skipped`` by ``--budget-s``) and no workload. Raises
    what building raises (:func:`measure_case` and :func:`measure_group` turn it into the row).

    With a ``budget``, a case whose estimated compile and timing (as one of a sweep group's
    cases if ``grouped``) would not fit what is left once it is built is not timed: its row is
    ``skipped``, with the reason."""
    row = identity_row(case, how)
    started = time.monotonic()
    if budget is not None and budget.left_s <= 0:
        return _skipped(row, f"--budget-s spent ({-budget.left_s:.0f} s over)"), None
    t0 = time.perf_counter()
    w = case.workload(how.context)
    if case.devices is None and row["n_devices"] > 1:
        w = shard_workload(w, row["n_devices"], case.sizes["batch"])
    row["n_params"] = w.n_params
    row["nnx_mode"] = w.nnx_mode
    known = {k: v for k, v in w.extra.items() if k in store.COLUMNS}
    other = {k: v for k, v in w.extra.items() if k not in store.COLUMNS}
    row.update(known)
    if other:
        row["extra_json"] = json.dumps(other, sort_keys=True, default=str)
    if "per_device_batch" not in row and case.sizes.get("batch"):
        row["per_device_batch"] = case.sizes["batch"] // row["n_devices"]
    _add_note(row, w.note)
    row["build_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    closed = jax.make_jaxpr(w.fn)(*w.args) if budget is not None else None
    counts = structure_columns(w.fn, w.args, log, w.while_trip_count, closed)
    _add_note(row, counts.pop("note", ""))
    row.update(counts)
    row["count_s"] = time.perf_counter() - t0
    if budget is not None:
        rounds = how.rounds if grouped else None
        need = budget.case_seconds(
            closed.jaxpr, counts, repeats=how.repeats, warmup=how.warmup, rounds=rounds
        )
        left = budget.left_s - (time.monotonic() - started)
        if need > left:
            why = f"estimated {need:.0f} s, {max(left, 0):.0f} s of --budget-s left"
            return _skipped(row, why), None
    return row, w


def _health(w: Workload):
    def health(out):
        status = w.health(out) if w.health else "ok"
        if status != "ok":
            raise HealthError(status)

    return health


def finish_row(row: dict, timing: Timing, calibration: Calibration | None) -> list[dict]:
    """Put a timing into its case's row (times, limit, efficiency, notes); returns the raw
    sample records for ``samples.csv``.

    With the run's ``calibration``, the row gets its limit (the
    time the device could not beat, ``bench.calibration.limit``), the term that sets it, and
    ``efficiency`` = limit / the fastest repeat (calibration keeps each constant's best too).
    """
    row.update(
        status="ok",
        compile_s=timing.compile_s,
        repeats=len(timing.samples_s),
        rounds=timing.n_rounds,
        round_spread=timing.round_spread,
        time_median_s=timing.median_s,
        time_min_s=timing.min_s,
        time_max_s=timing.max_s,
        time_iqr_s=timing.iqr_s,
        warmup_s=timing.warmup_s,
        timed_s=sum(timing.samples_s),
        **timing.memory,
    )
    if row.get("flops_analytic"):
        row["achieved_flops_per_s"] = row["flops_analytic"] / timing.median_s
    moved = bytes_moved(timing.memory)
    if calibration is not None and moved is not None and "work_flops" in row:
        lim = limit(row["work_flops"], moved, row["steps_executed"], calibration)
        row.update(
            limit_s=lim.limit_s, limit_bound=lim.bound, efficiency=lim.efficiency(timing.min_s)
        )
    what = "between rounds" if row["round_spread"] is not None else "of the samples"
    spread = timing_spread(row["round_spread"], timing.iqr_s, timing.median_s)
    if spread is not None and spread > NOISY_SPREAD:
        _add_note(
            row,
            f"unsteady: IQR {what} {spread:.0%} of the median (limit {NOISY_SPREAD:.0%}); "
            "re-measure before trusting this time",
        )
    rounds, orders = timing.rounds, timing.orders
    return [
        {
            "repeat": i,
            "time_s": t,
            "round": None if rounds is None else rounds[i],
            "order": None if orders is None else orders[i],
        }
        for i, t in enumerate(timing.samples_s)
    ]


def measure_case(
    case: Case, how: Protocol, *, budget: plan.Budget | None = None, log=print
) -> tuple[dict, list[dict]]:
    """Build and time one case back to back (:func:`bench.timing.time_back_to_back`). Returns
    its row and its raw sample records; never raises (a failure is the row's status)."""
    row = identity_row(case, how)
    try:
        row, w = build_case(case, how, budget=budget, log=log)
        if w is None:
            return row, []
        trace = _trace_dir(how, case.label)
        timing = time_back_to_back(
            w.fn, w.args, repeats=how.repeats, warmup=how.warmup, before_timing=_health(w),
            trace_dir=trace,
        )  # fmt: skip
        if trace is not None:
            _add_note(row, f"traced ({trace}): its times include the profiler's overhead")
        return row, finish_row(row, timing, how.calibration)
    except BaseException as e:  # one bad case must not lose the sweep, nor end it
        if users(e):
            raise
        row.update(status=classify(e), error=first_line(e))
        return row, []


def measure_group(
    cases: list[Case],
    how: Protocol,
    *,
    budget: plan.Budget | None = None,
    log=print,
    on_case: Callable[[Case | None], None] = lambda case: None,
    on_visit: Callable[[int], None] | None = None,
) -> list[tuple[dict, list[dict]]]:
    """Build and time the cases of one sweep group interleaved (:func:`bench.timing.
    time_rounds`): every case built, compiled and warmed up first, then ``how.rounds`` rounds
    in a random order seeded by the group. One ``(row, samples)`` per case, in order; never
    raises. A case that fails in the rounds costs only itself: its row gets its status and
    error, the others their rounds. ``on_case(case)`` is told which case is being built
    (``None``: the rounds have begun); ``on_visit(j)``, the index in ``cases`` of the case each
    visit of the rounds is to."""
    results = [(identity_row(case, how), []) for case in cases]
    ready = _prepare_group(cases, how, results, budget=budget, log=log, on_case=on_case)
    if not ready:
        return results
    on_case(None)
    group = cases[min(ready)].sweep_group or cases[min(ready)].label
    log(f"    timing {len(ready)} cases in {how.rounds} interleaved rounds ...")
    trace = _trace_dir(how, group)
    index = list(ready)  # the rounds' point i is the case index[i]

    def visit(i: int) -> None:
        # a Ctrl-C inside a point's host callback comes back as that point's error: it stops
        # the rounds here, before the next visit, and is not recorded as the point's failure
        check_stop()
        if on_visit is not None:
            on_visit(index[i])

    try:
        timings = time_rounds(
            list(ready.values()), rounds=how.rounds, seed=zlib.crc32(group.encode()),
            trace_dir=trace, on_visit=visit,
        )  # fmt: skip
    except BaseException as e:
        if users(e):
            raise
        for i in ready:
            results[i][0].update(status=classify(e), error=first_line(e))
        return results
    check_stop()  # (the rounds' last visit)
    for i, timing in zip(ready, timings, strict=True):
        row = results[i][0]
        if timing.error is not None:
            row.update(status=classify(timing.error), error=first_line(timing.error))
            log(f"    {cases[i].label}: {row['status']} in the rounds; the others go on")
            continue
        if trace is not None:
            _add_note(row, f"traced ({trace}): its times include the profiler's overhead")
        results[i] = (row, finish_row(row, timing, how.calibration))
    return results


def _prepare_group(cases, how, results, *, budget, log, on_case) -> dict[int, Ready]:
    """Build, compile and warm up each case of a group, in order; a case that fails (or does
    not fit the budget) gets its row in ``results`` and is left out of the rounds."""
    ready: dict[int, Ready] = {}
    began = time.monotonic()
    for i, case in enumerate(cases):
        on_case(case)
        left = None  # the budget less what the group's earlier cases took
        if budget is not None:
            left = dataclasses.replace(budget, left_s=budget.left_s - (time.monotonic() - began))
        try:
            row, w = build_case(case, how, budget=left, grouped=True, log=log)
            results[i] = (row, [])
            if w is not None:
                ready[i] = prepare(w.fn, w.args, warmup=how.warmup, before_timing=_health(w))
                log(f"    {case.label}: compiled in {ready[i].compile_s:.2f} s")
        except BaseException as e:
            if users(e):
                raise
            results[i][0].update(status=classify(e), error=first_line(e))
    return ready


def _trace_dir(how: Protocol, label: str) -> str | None:
    """Where ``--trace`` writes the profiler trace of a case or group, if it is on."""
    return None if how.trace_dir is None else str(pathlib.Path(how.trace_dir) / _slug(label))


def _skipped(row: dict, why: str) -> dict:
    row.update(status="skipped", error=f"{why}; --resume measures it")
    return row


def _slug(label: str) -> str:
    """A file-system-safe folder name for a case's label."""
    return "".join(ch if ch.isalnum() or ch in "-_=." else "_" for ch in label)[:150]


class IsolatedRunner:
    """Measures cases in a worker process so a hung or crashing case cannot stop the run
    (``--case-timeout``).

    The worker (spawned, so it starts a fresh JAX) rebuilds each case from its suite, profile
    and identity, says it has started the case, measures it with :func:`measure_case` and sends
    the row back. The timeout counts from that start, not from the worker's own start-up (a
    fresh process importing JAX). A case that runs past it has its worker killed and is
    recorded as ``timeout``; a case whose worker dies (an abort, a signal, an exit) is
    ``crashed`` with the worker's exit signal or status. Either way a new worker takes the next
    case. Workers die with the bench process (a parent-death signal on Linux, a watchdog
    thread elsewhere), so none outlives a killed run.
    """

    STARTUP_S = 600.0  # a worker that cannot start a case in this long is not coming

    def __init__(self, config: RunConfig):
        self.profile, self.timeout_s = config.profile, config.case_timeout_s
        self.compile_cache = config.compile_cache
        self._ctx = multiprocessing.get_context("spawn")
        self._proc = None

    def _start(self):
        # pipes, not queues: a message is in the pipe when send() returns, so a worker that
        # aborts right after saying it started a case has still said so
        worker_tasks, self._tasks = self._ctx.Pipe(duplex=False)
        self._results, worker_results = self._ctx.Pipe(duplex=False)
        self._proc = self._ctx.Process(
            target=_worker,
            args=(
                self.profile,
                self.compile_cache,
                worker_tasks,
                worker_results,
                os.getpid(),
            ),
            daemon=True,
        )
        self._proc.start()
        worker_tasks.close()  # the worker's ends: closed here, so its death reads as EOF
        worker_results.close()

    def _receive(self, limit_s: float):
        """The worker's next message, ``("died", exitcode)``, or ``("late",)`` after limit_s."""
        deadline = time.monotonic() + limit_s
        while True:
            try:
                if self._results.poll(max(0.0, min(0.2, deadline - time.monotonic()))):
                    return self._results.recv()
            except (EOFError, OSError):  # the worker's end closed: it is gone
                self._proc.join()
            if self._proc.exitcode is not None:
                return ("died", self._proc.exitcode)
            if time.monotonic() >= deadline:
                return ("late",)

    def measure(
        self, cases: list[Case], how: Protocol, budget: plan.Budget | None = None
    ) -> list[tuple[dict, list]]:
        """Measure ``cases`` in the worker: one case back to back, or a sweep group
        interleaved; the timeout is ``--case-timeout`` per case."""
        if self._proc is None or not self._proc.is_alive():
            self._start()
        self._tasks.send(([(c.suite, c.key(how.devices)) for c in cases], how, budget))
        started = self._receive(self.STARTUP_S)
        if started[0] != "started":
            self.close()
            how = _ended(started[1]) if started[0] == "died" else "did not answer"
            raise store.RunFolderError(
                f"the case worker process {how} before it could start {cases[0].label} "
                "(its error, if any, is above)"
            )
        deadline = time.monotonic() + self.timeout_s * len(cases)
        at = None  # the case of the group the worker was last busy with
        while True:
            message = self._receive(max(0.0, deadline - time.monotonic()))
            if message[0] != "at":
                break
            at = message[1]
        if message[0] == "done":
            return message[1]
        self.close()
        out = []
        for j, case in enumerate(cases):
            row = identity_row(case, how)
            if at is not None and j != at and len(cases) > 1:
                # the group's point that hung or crashed costs only itself: the others are
                # measured again by --resume (their rounds died with the worker)
                why = f"not timed: {cases[at].label} of its interleaved group " + (
                    "ran past --case-timeout" if message[0] == "late" else "crashed the worker"
                )
                out.append((_skipped(row, why), []))
                continue
            if message[0] == "late":
                limit_s = f"--case-timeout {self.timeout_s} s"
                if len(cases) > 1:
                    limit_s += f" × {len(cases)} cases of its interleaved group"
                why = f"case ran past {limit_s} (counted from its start)"
                row.update(status="timeout", error=why)
            else:
                row.update(status="crashed", error=f"the worker process {_ended(message[1])}")
            out.append((row, []))
        return out

    def close(self):
        if self._proc is not None:
            self._proc.kill()
            self._proc.join()
            self._tasks.close()
            self._results.close()
            self._proc = None


def _ended(exitcode: int) -> str:
    if exitcode < 0:
        return f"was killed by {signal.Signals(-exitcode).name}"
    return f"exited with status {exitcode}"


def _die_with_parent(parent_pid: int) -> None:
    """Make this process end when ``parent_pid`` does, however that one ends."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        if libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0) == 0:
            if os.getppid() != parent_pid:  # the parent died before prctl took effect
                os._exit(1)
            return

    def watch():
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _worker(profile, compile_cache, tasks, results, parent_pid):
    global _watching
    _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's; it stops us
    _watching = True  # so a KeyboardInterrupt here is the case's own
    use_compile_cache(compile_cache)
    registry = suites()
    while True:
        try:
            keys, how, budget = tasks.recv()
        except EOFError:  # the bench process closed its end: no more cases
            return
        results.send(("started",))
        cases = [
            next(c for c in registry[suite].cases(profile) if c.key(how.devices) == key)
            for suite, key in keys
        ]
        log = lambda s: print(s, file=sys.stderr)  # noqa: E731

        def at(j: int) -> None:  # which case of a group the worker is busy with
            results.send(("at", j))

        index = {id(case): j for j, case in enumerate(cases)}
        found = measure(
            cases, how, budget=budget, log=log, on_visit=at,
            on_case=lambda case, index=index: case is not None and at(index[id(case)]),
        )  # fmt: skip
        results.send(("done", found))


def measure(
    cases: list[Case],
    how: Protocol,
    *,
    budget=None,
    log=print,
    on_case=lambda case: None,
    on_visit=None,
) -> list[tuple[dict, list]]:
    """One case timed back to back, or a sweep group of them interleaved (``on_case``,
    ``on_visit``: see :func:`measure_group`)."""
    if len(cases) == 1 and cases[0].sweep_group is None:
        on_case(cases[0])
        return [measure_case(cases[0], how, budget=budget, log=log)]
    return measure_group(cases, how, budget=budget, log=log, on_case=on_case, on_visit=on_visit)
