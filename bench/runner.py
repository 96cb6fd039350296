"""Runs suites case by case into a run folder: one failure never stops the sweep.

Each case is built, measured by :func:`bench.timing.measure`, and written as one row the
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
import multiprocessing
import os
import pathlib
import signal
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator

import jax

from bench import claims, plan, store
from bench.account import TimeAccount
from bench.calibration import Calibration, bytes_moved, limit
from bench.config import RunConfig
from bench.sharding import shard_workload
from bench.structure import analyse_jaxpr
from bench.timing import (
    Ready,
    RecompilationError,
    Timing,
    measure,
    prepare,
    time_rounds,
    use_compile_cache,
)
from bench.workloads import (
    IDENTITY,
    SIZE_FIELDS,
    Case,
    Workload,
    case_filter,
    get_suites,
    running,
    set_run_dir,
    suites,
)


class HealthError(RuntimeError):
    def __init__(self, status: str):
        super().__init__(f"output failed its health check: {status}")
        self.status = status


SPREAD_LIMIT = 0.25
"""A row whose timed samples have an interquartile range above this fraction of their median
gets a note saying its time is not to be trusted (a stall, another process, throttling): with
2 repeats the median is their mean, and one 4 s stall moves it by 2 s."""


class Interrupted(KeyboardInterrupt):
    """The user stopped the run: Ctrl-C (SIGINT) or SIGTERM."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


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
    try:
        yield
    finally:
        stopped = _stop is not None
        for sig, old in previous.items():
            signal.signal(sig, signal.SIG_IGN if stopped else old)
        if stopped:
            _after_stop.update(previous)
        _watching, _stop = False, None


def restore_signals() -> None:
    """Give back the SIGINT and SIGTERM handlers a run stopped by the user set aside (see
    :func:`user_signals`); nothing when none was."""
    while _after_stop:
        sig, old = _after_stop.popitem()
        signal.signal(sig, old)


def _check_stop() -> None:
    if _stop is not None:
        raise Interrupted(_stop)


def _users(error: BaseException) -> bool:
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


def _identity_row(case: Case, run_id: str, devices: int) -> dict:
    n_devices, reason = case.placement(devices)
    return {
        "run_id": run_id,
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
    *,
    run_id: str,
    repeats: int,
    warmup: int,
    devices: int = 1,
    budget: plan.Budget | None = None,
    rounds: int | None = None,
    log=print,
) -> tuple[dict, Workload | None]:
    """Build a case and count its structure: its row so far and its workload, or a row that
    says why it will not be timed (``skipped`` by ``--budget-s``) and no workload. Raises
    what building raises (:func:`measure_case` and :func:`measure_group` turn it into the row).

    With a ``budget``, a case whose estimated compile and timing would not fit what is left
    once it is built is not timed: its row is ``skipped``, with the reason."""
    row = _identity_row(case, run_id, devices)
    started = time.monotonic()
    if budget is not None and budget.left_s <= 0:
        return _skipped(row, f"--budget-s spent ({-budget.left_s:.0f} s over)"), None
    t0 = time.perf_counter()
    w = case.build()
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
        need = budget.case_seconds(
            closed.jaxpr, counts, repeats=repeats, warmup=warmup, rounds=rounds
        )
        left = budget.left_s - (time.monotonic() - started)
        if need > left:
            why = f"estimated {need:.0f} s, {max(left, 0):.0f} s of --budget-s left"
            return _skipped(row, why), None
    return row, w


def _health(w: Workload):
    def health(out):
        status = w.check(out) if w.check else "ok"
        if status != "ok":
            raise HealthError(status)

    return health


def finish_row(row: dict, timing: Timing, calibration: dict | None) -> list[dict]:
    """Put a timing into its case's row (times, limit, efficiency, notes); returns the raw
    sample records for ``samples.csv``.

    With the run's ``calibration`` (``Calibration.as_dict()``), the row gets its limit (the
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
    if calibration and moved is not None and "work_flops" in row:
        lim = limit(
            row["work_flops"], moved, row["steps_executed"], Calibration.from_dict(calibration)
        )
        row.update(
            limit_s=lim.limit_s, limit_bound=lim.bound, efficiency=lim.efficiency(timing.min_s)
        )
    spread, what = row["round_spread"], "between rounds"
    if spread is None and timing.median_s > 0:
        spread, what = timing.iqr_s / timing.median_s, "of the samples"
    if spread is not None and spread > SPREAD_LIMIT:
        _add_note(
            row,
            f"unsteady: IQR {what} {spread:.0%} of the median (limit {SPREAD_LIMIT:.0%}); "
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
    case: Case,
    *,
    run_id: str,
    repeats: int,
    warmup: int,
    devices: int = 1,
    calibration: dict | None = None,
    trace_dir: str | None = None,
    budget: plan.Budget | None = None,
    log=print,
) -> tuple[dict, list[dict]]:
    """Build and time one case back to back (:func:`bench.timing.measure`). Returns its row
    and its raw sample records; never raises (a failure is the row's status)."""
    row = _identity_row(case, run_id, devices)
    try:
        row, w = build_case(
            case, run_id=run_id, repeats=repeats, warmup=warmup, devices=devices,
            budget=budget, log=log,
        )  # fmt: skip
        if w is None:
            return row, []
        trace = None if trace_dir is None else str(pathlib.Path(trace_dir) / _slug(case.label))
        timing = measure(
            w.fn, w.args, repeats=repeats, warmup=warmup, before_timing=_health(w), trace_dir=trace
        )
        if trace is not None:
            _add_note(row, f"traced ({trace}): its times include the profiler's overhead")
        return row, finish_row(row, timing, calibration)
    except BaseException as e:  # one bad case must not lose the sweep, nor end it
        if _users(e):
            raise
        row.update(status=classify(e), error=first_line(e))
        return row, []


def measure_group(
    cases: list[Case],
    *,
    run_id: str,
    repeats: int,
    warmup: int,
    rounds: int,
    devices: int = 1,
    calibration: dict | None = None,
    trace_dir: str | None = None,
    budget: plan.Budget | None = None,
    log=print,
    on_case: Callable[[Case | None], None] = lambda case: None,
) -> list[tuple[dict, list[dict]]]:
    """Build and time the cases of one sweep group interleaved (:func:`bench.timing.
    time_rounds`): every case built, compiled and warmed up first, then ``rounds`` rounds in a
    random order seeded by the group. One ``(row, samples)`` per case, in order; never raises.
    ``on_case(case)`` is told which case is being built (``None``: the rounds have begun)."""
    results: list[tuple[dict, list[dict]]] = []
    ready: dict[int, Ready] = {}
    began = time.monotonic()
    for i, case in enumerate(cases):
        on_case(case)
        left = None  # the budget less what the group's earlier cases took
        if budget is not None:
            left = dataclasses.replace(budget, left_s=budget.left_s - (time.monotonic() - began))
        row = None
        try:
            row, w = build_case(
                case, run_id=run_id, repeats=repeats, warmup=warmup, devices=devices,
                budget=left, rounds=rounds, log=log,
            )  # fmt: skip
            if w is not None:
                ready[i] = prepare(w.fn, w.args, warmup=warmup, before_timing=_health(w))
                log(f"    {case.label}: compiled in {ready[i].compile_s:.2f} s")
        except BaseException as e:
            if _users(e):
                raise
            row = row or _identity_row(case, run_id, devices)
            row.update(status=classify(e), error=first_line(e))
        results.append((row, []))
    if not ready:
        return results
    on_case(None)
    order = sorted(ready)
    group = cases[order[0]].sweep_group or cases[order[0]].label
    log(f"    timing {len(order)} cases in {rounds} interleaved rounds ...")
    trace = None if trace_dir is None else str(pathlib.Path(trace_dir) / _slug(group))
    try:
        timings = time_rounds(
            [ready[i] for i in order], rounds=rounds, seed=zlib.crc32(group.encode()),
            trace_dir=trace,
        )  # fmt: skip
    except BaseException as e:
        if _users(e):
            raise
        for i in order:
            results[i][0].update(status=classify(e), error=first_line(e))
        return results
    for i, timing in zip(order, timings, strict=True):
        row = results[i][0]
        if trace is not None:
            _add_note(row, f"traced ({trace}): its times include the profiler's overhead")
        results[i] = (row, finish_row(row, timing, calibration))
    return results


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

    def __init__(self, config: RunConfig, run_dir: pathlib.Path):
        self.profile, self.timeout_s, self.run_dir = config.profile, config.case_timeout_s, run_dir
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
                self.run_dir,
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

    def measure(self, cases: list[Case], **kwargs) -> list[tuple[dict, list]]:
        """Measure ``cases`` in the worker: one case back to back, or a sweep group
        interleaved (``kwargs["rounds"]``); the timeout is ``--case-timeout`` per case."""
        if self._proc is None or not self._proc.is_alive():
            self._start()
        devices = kwargs["devices"]
        self._tasks.send(([(c.suite, c.key(devices)) for c in cases], kwargs))
        started = self._receive(self.STARTUP_S)
        if started[0] != "started":
            self.close()
            how = _ended(started[1]) if started[0] == "died" else "did not answer"
            raise store.RunFolderError(
                f"the case worker process {how} before it could start {cases[0].label} "
                "(its error, if any, is above)"
            )
        message = self._receive(self.timeout_s * len(cases))
        if message[0] == "done":
            return message[1]
        self.close()
        out = []
        for case in cases:
            row = _identity_row(case, kwargs["run_id"], devices)
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


def _worker(profile, run_dir, compile_cache, tasks, results, parent_pid):
    global _watching
    _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's; it stops us
    _watching = True  # so a KeyboardInterrupt here is the case's own
    use_compile_cache(compile_cache)
    set_run_dir(run_dir)
    registry = suites()
    while True:
        try:
            keys, kwargs = tasks.recv()
        except EOFError:  # the bench process closed its end: no more cases
            return
        results.send(("started",))
        devices = kwargs["devices"]
        cases = [
            next(c for c in registry[suite].cases(profile) if c.key(devices) == key)
            for suite, key in keys
        ]
        log = lambda s: print(s, file=sys.stderr)  # noqa: E731
        results.send(("done", _measure_cases(cases, log=log, **kwargs)))


def _measure_cases(
    cases: list[Case], *, rounds: int, on_case=lambda case: None, **kwargs
) -> list[tuple[dict, list]]:
    """One case timed back to back, or a sweep group of them interleaved (``on_case``: see
    :func:`measure_group`)."""
    if len(cases) == 1 and cases[0].sweep_group is None:
        on_case(cases[0])
        return [measure_case(cases[0], **kwargs)]
    return measure_group(cases, rounds=rounds, on_case=on_case, **kwargs)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What a session of a run did."""

    measured: int  # rows written by this session
    left: int  # cases of the run still without a row (a session narrowed by --model/--variant)
    failed_claims: tuple[str, ...]  # claims whose experiment ended in ERROR
    deferred_claims: tuple[str, ...] = ()  # claims whose experiment did not fit --budget-s


def run(config: RunConfig, run_id: str, run_dir: pathlib.Path, **options) -> Outcome:
    """Measure every case of the configured suites not yet in ``run_dir``, then run the claims'
    experiments whose claims are missing or ERROR. ``keep`` narrows the cases (``--model`` /
    ``--variant``); ``experiments`` (default: the config's) skips the experiments this session.

    The caller holds the folder's lock (:class:`bench.store.RunLock`). A folder left by a
    killed run is repaired first, then checked whole with the loaders (damage is refused, not
    appended to). ``env`` (the run's env.json) says which cases killed earlier sessions.

    With ``config.case_timeout_s`` each case runs in a worker process that is killed when it
    takes longer (see :class:`IsolatedRunner`).
    """
    with running(run_dir):
        return _run(config, run_id, run_dir, **options)


def _run(
    config: RunConfig,
    run_id: str,
    run_dir: pathlib.Path,
    *,
    calibration: dict | None = None,
    keep: Callable[[Case], bool] = lambda case: True,
    env: dict | None = None,
    experiments: bool | None = None,
    deadline: float | None = None,
    account: TimeAccount | None = None,
    log: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True),
) -> Outcome:
    account = account or TimeAccount(time.perf_counter())
    listing = time.perf_counter()
    repair_or_refuse(run_dir)
    died = store.deaths(env or {})
    done = store.completed_keys(run_dir)
    chosen = get_suites(config.suites)
    run_cases = [c for s in chosen for c in s.cases(config.profile)]
    cases = [c for c in run_cases if keep(c)]
    todo = [c for c in cases if c.key(config.devices) not in done]
    if done:
        log(f"resuming {run_dir}: {len(cases) - len(todo)} of {len(cases)} cases already done")
        if not todo:
            log("this run is already complete: no case left to measure")
    account.add("listing cases, checking the folder", time.perf_counter() - listing)
    timeout = config.case_timeout_s
    isolated = IsolatedRunner(config, run_dir) if timeout else None
    prepared = set()
    kwargs = dict(
        run_id=run_id,
        repeats=config.repeats,
        warmup=config.warmup,
        rounds=config.rounds,
        devices=config.devices,
        calibration=calibration,
        trace_dir=config.trace_dir,
    )
    if deadline is not None:
        log("measuring the compile cost, for --budget-s ...")
        cost = plan.compile_cost()
        cal = Calibration.from_dict(calibration) if calibration else None
    unprepared: dict[str, str] = {}  # suite -> why its preparation did not run
    measured, started = 0, time.monotonic()
    with contextlib.ExitStack() as stack:
        out = store.CsvAppender(run_dir / "measurements.csv", store.COLUMNS)
        stack.callback(out.close)
        raw = store.CsvAppender(run_dir / "samples.csv", store.SAMPLE_COLUMNS)
        stack.callback(raw.close)
        if isolated:
            stack.callback(isolated.close)
        stack.callback(store.clear_in_flight, run_dir)  # not a death: the user or the disk
        units = _units(todo)
        done_cases = 0
        for unit in units:
            _check_stop()
            for case in unit:
                suite = next(s for s in chosen if s.name == case.suite)
                if suite.prepare is not None and suite.name not in prepared:
                    prepared.add(suite.name)
                    need = suite.prepare_cost_s.get(config.profile, 0.0)
                    if deadline is not None and need > deadline - time.monotonic():
                        unprepared[suite.name] = f"its preparation (~{need:.0f} s) did not fit"
                        log(f"not preparing {suite.name}: ~{need:.0f} s do not fit --budget-s")
                    else:
                        log(f"preparing {suite.name} ...")
                        began = time.perf_counter()
                        try:
                            with account.spend(f"prepare {suite.name}"):
                                suite.prepare(config, run_dir)
                            log(f"    prepared ({time.perf_counter() - began:.1f} s)")
                        except BaseException as e:  # its cases then fail one by one, as rows
                            if _users(e):
                                raise
                            log(f"    preparing {suite.name} failed: {first_line(e)}")
            t0 = time.perf_counter()
            if deadline is not None:
                kwargs["budget"] = plan.Budget(deadline - time.monotonic(), cost, cal)
            results: dict[int, tuple[dict, list]] = {}
            timed = []
            for j, case in enumerate(unit):
                deaths = died.get(store.case_death_key(case.key(config.devices)), 0)
                if deaths >= store.CRASH_LIMIT:
                    log(f"[{done_cases + j + 1}/{len(todo)}] {case.label}: not measured again")
                    row = _identity_row(case, run_id, config.devices)
                    row.update(status="crashed", error=_killed(deaths))
                    results[j] = (row, [])
                elif case.suite in unprepared:
                    row = _identity_row(case, run_id, config.devices)
                    results[j] = (_skipped(row, f"{unprepared[case.suite]} in --budget-s"), [])
                else:
                    timed.append(j)
            if timed:
                cases_ = [unit[j] for j in timed]
                eta = _eta(time.monotonic() - started, done_cases, len(todo))
                first = done_cases + timed[0] + 1
                if len(unit) == 1:
                    log(f"[{first}/{len(todo)}] {unit[0].label}: compiling and timing ...{eta}")
                else:
                    log(
                        f"[{first}-{done_cases + len(unit)}/{len(todo)}] sweep group "
                        f"{unit[0].sweep_group}: {len(cases_)} cases, compiled first, then "
                        f"timed in {config.rounds} interleaved rounds ...{eta}"
                    )

                def in_flight(case: Case | None, group=tuple(cases_)):
                    what = (
                        {"case": case.label, "key": list(case.key(config.devices))}
                        if case is not None
                        else {
                            "interleaved": [c.label for c in group],
                            "keys": [list(c.key(config.devices)) for c in group],
                        }
                    )
                    store.mark_in_flight(run_dir, what)

                if isolated:
                    in_flight(cases_[0] if len(cases_) == 1 else None)
                    found = isolated.measure(cases_, **kwargs)
                else:
                    found = _measure_cases(cases_, log=log, on_case=in_flight, **kwargs)
                _check_stop()  # an interrupt swallowed inside the case: its row is not kept
                results.update(zip(timed, found, strict=True))
            # samples first, the rows last: a case counts as done once its row is written,
            # and a sweep group's rows are written together (a kill re-measures it whole)
            for j in range(len(unit)):
                row, samples = results[j]
                identity = {k: row.get(k) for k in ("run_id", *IDENTITY)}
                for sample in samples:
                    raw.write({**identity, **sample})
            for j in range(len(unit)):
                out.write(results[j][0])
            store.clear_in_flight(run_dir)
            account.add_unit([results[j][0] for j in range(len(unit))], time.perf_counter() - t0)
            measured += len(unit)
            done_cases += len(unit)
            for j in range(len(unit)):
                prefix = f"    {unit[j].label}: " if len(unit) > 1 else "    "
                log(f"{prefix}{_summary(results[j][0])}")
            log(f"    ({time.perf_counter() - t0:.1f} s)")
    failed: list[str] = []
    deferred: list[str] = []
    if config.experiments if experiments is None else experiments:
        failed = run_experiments(
            config, run_id, run_dir, log=log, died=died, deadline=deadline, deferred=deferred,
            account=account,
        )  # fmt: skip
    recorded = store.completed_keys(run_dir)
    in_run = case_filter(chosen, config.profile, config.models, config.variants)
    left = sum(c.key(config.devices) not in recorded for c in run_cases if in_run(c))
    return Outcome(measured, left, tuple(dict.fromkeys(failed)), tuple(deferred))


def _units(todo: list[Case]) -> list[list[Case]]:
    """The session's cases as units of measurement, in order: a case alone, or every case of a
    sweep group (:attr:`bench.workloads.Case.sweep_group`) together, where its first one is."""
    groups: dict[str, list[Case]] = {}
    for case in todo:
        if case.sweep_group is not None:
            groups.setdefault(case.sweep_group, []).append(case)
    units, seen = [], set()
    for case in todo:
        if case.sweep_group is None:
            units.append([case])
        elif case.sweep_group not in seen:
            seen.add(case.sweep_group)
            units.append(groups[case.sweep_group])
    return units


def _eta(elapsed_s: float, done: int, total: int) -> str:
    """The time the session's cases have left at this session's pace so far.

    From the pace, not from the plan: a plan builds and traces every case first, which would
    add its own minutes to every run; the pace is exact once a few cases have run."""
    if done < 3:
        return ""
    left_s = elapsed_s / done * (total - done)
    return f" (~{left_s / 60:.0f} min left)" if left_s >= 90 else f" (~{left_s:.0f} s left)"


def _killed(deaths: int) -> str:
    return (
        f"killed the bench process {deaths} times while being measured; not tried again "
        "(see the sessions in env.json)"
    )


def repair_or_refuse(run_dir: pathlib.Path) -> None:
    """Make a run folder ready to be added to: refuse it if what a resume would keep of its
    files is damaged (:class:`bench.store.RunFolderError` with file and line, nothing
    touched), else repair what a killed run left half written
    (:func:`bench.store.repair_interrupted`)."""
    try:
        store.check_resumable(run_dir)
    except store.SchemaError as e:
        raise store.RunFolderError(f"{e}: the run folder is damaged") from None
    store.repair_interrupted(run_dir)


def run_experiments(
    config: RunConfig,
    run_id: str,
    run_dir: pathlib.Path,
    *,
    log,
    died=None,
    deadline: float | None = None,
    deferred: list[str] | None = None,
    account: TimeAccount | None = None,
) -> list[str]:
    """Run each claim experiment of the configured suites with a claim missing or ERROR in
    ``claims.csv``; its verdicts replace any earlier rows of its claims, as one block (see
    :func:`bench.store.record_claims`). Returns the claims left ERROR.

    Before a ``deadline`` (``time.monotonic()``, from ``--budget-s``), an experiment whose
    declared cost does not fit what is left is not started: its claims go to ``deferred``
    (they stay missing from ``claims.csv``, so ``--resume`` runs them)."""
    path = run_dir / "claims.csv"
    done = store.recorded_claims(path)
    failed = []
    try:
        for experiment in claims.experiments(config.suites):
            if set(experiment.claims) <= done:
                continue
            _check_stop()
            named = ", ".join(dict.fromkeys(experiment.claims))  # one experiment, several rows
            need = experiment.cost_s.get(config.profile, 0.0)
            if deadline is not None and need > deadline - time.monotonic():
                log(f"claims {named}: not run, ~{need:.0f} s do not fit")
                (deferred if deferred is not None else []).extend(dict.fromkeys(experiment.claims))
                continue
            deaths = (died or {}).get(store.experiment_death_key(experiment.claims), 0)
            check = f"{experiment.suite} experiment"
            if deaths >= store.CRASH_LIMIT:
                verdicts = [
                    dict(claim=c, verdict="ERROR", check=check, measured=_killed(deaths))
                    for c in experiment.claims
                ]
            else:
                log(f"claims {named} ({experiment.suite}) ...")
                began = time.perf_counter()
                store.mark_in_flight(run_dir, {"experiment": list(experiment.claims)})
                try:
                    with account.spend(f"claims {named}") if account else contextlib.nullcontext():
                        found = experiment.run(config.profile, run_dir)
                    verdicts = [v.as_row() for v in found]
                except BaseException as e:
                    if _users(e):
                        raise
                    verdicts = [
                        dict(
                            claim=c,
                            verdict="ERROR",
                            check=check,
                            measured=f"experiment crashed: {first_line(e)}",
                        )
                        for c in experiment.claims
                    ]
                _check_stop()
            rows = [{"run_id": run_id, "suite": experiment.suite, **v} for v in verdicts]
            store.record_claims(path, rows)
            store.clear_in_flight(run_dir)
            for v in verdicts:
                log(f"    {v['claim']}: {v['verdict']} — {v['measured']}")
                if v["verdict"] == "ERROR":
                    failed.append(v["claim"])
            if deaths < store.CRASH_LIMIT:
                log(f"    ({time.perf_counter() - began:.1f} s)")
    finally:
        store.clear_in_flight(run_dir)
    return failed


def _summary(row: dict) -> str:
    if row["status"] != "ok":
        return f"{row['status']}: {row.get('error') or ''}"
    return (
        f"ok: compile {row['compile_s']:.2f} s, median {row['time_median_s'] * 1e3:.3f} ms "
        f"over {row['repeats']} repeats"
    )
