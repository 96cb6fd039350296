"""Runs suites case by case into a run folder: one failure never stops the sweep.

Each case is built, measured by :func:`bench.timing.measure`, and written as one row the
moment it finishes. A case that fails (build error, XLA error, out of memory, NaN loss,
recompilation in the timed region) becomes a row whose ``status`` says so and whose
``error`` holds the first line of the message; the sweep goes on.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import pathlib
import queue
import sys
import time
from collections.abc import Callable

import jax

from bench import claims, records
from bench.calibration import Calibration, bytes_moved, limit
from bench.config import RunConfig
from bench.sharding import shard_workload
from bench.structure import analyse
from bench.timing import RecompilationError, measure, use_compile_cache
from bench.workloads import IDENTITY, SIZE_FIELDS, Case, get_suites, set_run_dir, suites


class HealthError(RuntimeError):
    def __init__(self, status: str):
        super().__init__(f"output failed its health check: {status}")
        self.status = status


def classify(error: BaseException) -> str:
    if isinstance(error, HealthError):
        return error.status
    if isinstance(error, RecompilationError):
        return "recompiled"
    text = str(error)
    if "RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower():
        return "oom"
    return "error"


def first_line(error: BaseException) -> str:
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    return f"{type(error).__name__}: {lines[0] if lines else ''}"[:500]


def device_fields() -> dict:
    """Where an unsharded case runs: one device (data-parallel cases override n_devices)."""
    device = jax.devices()[0]
    return {"device_kind": device.device_kind, "platform": device.platform, "n_devices": 1}


def structure_columns(fn, args, log=print, while_trip_count=None) -> dict:
    """Span, executed loop steps and work of the traced computation (see bench.structure).

    A program the analyser cannot count is not a failed case: the row keeps its timing, its
    count columns stay empty, and its ``note`` says why.
    """
    try:
        s = analyse(fn, *args, while_trip_count=while_trip_count)
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


def measure_case(
    case: Case,
    *,
    run_id: str,
    repeats: int,
    warmup: int,
    devices: int = 1,
    calibration: dict | None = None,
    trace_dir: str | None = None,
    log=print,
) -> tuple[dict, list]:
    """Build and time one case. Returns its row and its raw samples; never raises.

    With the run's ``calibration`` (``Calibration.as_dict()``), the row gets its limit (the
    time the device could not beat, ``bench.calibration.limit``), the term that sets it, and
    ``efficiency`` = limit / the fastest repeat (calibration keeps each constant's best too).
    """
    row = _identity_row(case, run_id, devices)
    samples: list[float] = []
    try:
        w = case.build()
        if case.devices is None and row["n_devices"] > 1:
            w = shard_workload(w, row["n_devices"], case.sizes["batch"])
        row["n_params"] = w.n_params
        row["nnx_mode"] = w.nnx_mode
        known = {k: v for k, v in w.extra.items() if k in records.COLUMNS}
        other = {k: v for k, v in w.extra.items() if k not in records.COLUMNS}
        row.update(known)
        if other:
            row["extra_json"] = json.dumps(other, sort_keys=True, default=str)
        if "per_device_batch" not in row and case.sizes.get("batch"):
            row["per_device_batch"] = case.sizes["batch"] // row["n_devices"]
        _add_note(row, w.note)
        counts = structure_columns(w.fn, w.args, log, w.while_trip_count)
        _add_note(row, counts.pop("note", ""))
        row.update(counts)

        def health(out):
            status = w.check(out) if w.check else "ok"
            if status != "ok":
                raise HealthError(status)

        trace = None if trace_dir is None else str(pathlib.Path(trace_dir) / _slug(case.label))
        timing = measure(
            w.fn, w.args, repeats=repeats, warmup=warmup, before_timing=health, trace_dir=trace
        )
        samples = timing.samples_s
        row.update(
            status="ok",
            compile_s=timing.compile_s,
            repeats=len(samples),
            time_median_s=timing.median_s,
            time_min_s=timing.min_s,
            time_max_s=timing.max_s,
            time_iqr_s=timing.iqr_s,
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
    except Exception as e:  # one bad case must not lose the sweep
        row.update(status=classify(e), error=first_line(e))
    return row, samples


def _slug(label: str) -> str:
    """A file-system-safe folder name for a case's label."""
    return "".join(ch if ch.isalnum() or ch in "-_=." else "_" for ch in label)[:150]


class IsolatedRunner:
    """Measures cases in a worker process so a hung case can be stopped (``--case-timeout``).

    The worker (spawned, so it starts a fresh JAX) rebuilds each case from its suite, profile
    and identity, measures it with :func:`measure_case` and sends the row back. When a case
    runs past the timeout the worker is killed, the case is recorded as ``status = timeout``,
    and a new worker takes the next case.
    """

    def __init__(self, config: RunConfig, run_dir: pathlib.Path):
        self.profile, self.timeout_s, self.run_dir = config.profile, config.case_timeout_s, run_dir
        self.compile_cache = config.compile_cache
        self._ctx = multiprocessing.get_context("spawn")
        self._proc = None

    def _start(self):
        self._tasks, self._results = self._ctx.Queue(), self._ctx.Queue()
        self._proc = self._ctx.Process(
            target=_worker,
            args=(self.profile, self.run_dir, self.compile_cache, self._tasks, self._results),
            daemon=True,
        )
        self._proc.start()

    def measure(self, case: Case, **kwargs) -> tuple[dict, list]:
        if self._proc is None or not self._proc.is_alive():
            self._start()
        self._tasks.put((case.suite, case.key(kwargs["devices"]), kwargs))
        try:
            return self._results.get(timeout=self.timeout_s)
        except queue.Empty:
            self.close()
            row = _identity_row(case, kwargs["run_id"], kwargs["devices"])
            row.update(status="timeout", error=f"case ran past --case-timeout {self.timeout_s} s")
            return row, []

    def close(self):
        if self._proc is not None:
            self._proc.kill()
            self._proc.join()
            self._proc = None


def _worker(profile, run_dir, compile_cache, tasks, results):
    use_compile_cache(compile_cache)
    set_run_dir(run_dir)
    registry = suites()
    while True:
        suite, key, kwargs = tasks.get()
        devices = kwargs["devices"]
        (case,) = [c for c in registry[suite].cases(profile) if c.key(devices) == key]
        results.put(measure_case(case, log=lambda s: print(s, file=sys.stderr), **kwargs))


def run(
    config: RunConfig,
    run_id: str,
    run_dir: pathlib.Path,
    *,
    calibration: dict | None = None,
    keep: Callable[[Case], bool] = lambda case: True,
    log: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True),
) -> pathlib.Path:
    """Measure every case of the configured suites not yet in ``run_dir``, then run the claims'
    experiments. ``keep`` narrows the cases (``--model`` / ``--variant``).

    With ``config.case_timeout_s`` each case runs in a worker process that is killed when it
    takes longer (see :class:`IsolatedRunner`).
    """
    records.repair_interrupted(run_dir)
    set_run_dir(run_dir)
    done = records.completed_keys(run_dir)
    chosen = get_suites(config.suites)
    cases = [c for s in chosen for c in s.cases(config.profile) if keep(c)]
    todo = [c for c in cases if c.key(config.devices) not in done]
    if done:
        log(f"resuming {run_dir}: {len(cases) - len(todo)} of {len(cases)} cases already done")
        if not todo:
            log("this run is already complete: no case left to measure")
    out = records.CsvAppender(run_dir / "measurements.csv", records.COLUMNS)
    raw = records.CsvAppender(run_dir / "samples.csv", records.SAMPLE_COLUMNS)
    timeout = config.case_timeout_s
    isolated = IsolatedRunner(config, run_dir) if timeout else None
    prepared = set()
    kwargs = dict(
        run_id=run_id,
        repeats=config.repeats,
        warmup=config.warmup,
        devices=config.devices,
        calibration=calibration,
        trace_dir=config.trace_dir,
    )
    try:
        for i, case in enumerate(todo, 1):
            suite = next(s for s in chosen if s.name == case.suite)
            if suite.prepare is not None and suite.name not in prepared:
                prepared.add(suite.name)
                log(f"preparing {suite.name} ...")
                try:
                    suite.prepare(config, run_dir)
                except Exception as e:  # its cases then fail one by one, as rows
                    log(f"    preparing {suite.name} failed: {first_line(e)}")
            log(f"[{i}/{len(todo)}] {case.label}: compiling and timing ...")
            t0 = time.perf_counter()
            if isolated:
                row, samples = isolated.measure(case, **kwargs)
            else:
                row, samples = measure_case(case, log=log, **kwargs)
            # samples first, the row last: a case counts as done once its row is written
            identity = {k: row.get(k) for k in ("run_id", *IDENTITY)}
            for r, t in enumerate(samples):
                raw.write({**identity, "repeat": r, "time_s": t})
            out.write(row)
            log(f"    {_summary(row)} ({time.perf_counter() - t0:.1f} s)")
    finally:
        out.close()
        raw.close()
        if isolated:
            isolated.close()
    if config.experiments:
        run_experiments(config, run_id, run_dir, log=log)
    return run_dir


def run_experiments(config: RunConfig, run_id: str, run_dir: pathlib.Path, *, log) -> None:
    """Run each claim experiment of the configured suites whose claims are not yet recorded."""
    path = run_dir / "claims.csv"
    done = records.recorded_claims(path)
    appender = records.CsvAppender(path, records.CLAIM_COLUMNS)
    try:
        for experiment in claims.experiments(config.suites):
            if set(experiment.claims) <= done:
                continue
            log(f"claims {', '.join(experiment.claims)} ({experiment.suite}) ...")
            try:
                verdicts = [dataclasses.asdict(v) for v in experiment.run(config.profile, run_dir)]
            except Exception as e:
                verdicts = [
                    dict(
                        claim=claim,
                        verdict="ERROR",
                        check=f"{experiment.suite} experiment",
                        measured=f"experiment crashed: {first_line(e)}",
                    )
                    for claim in experiment.claims
                ]
            for v in verdicts:
                appender.write({"run_id": run_id, "suite": experiment.suite, **v})
                log(f"    {v['claim']}: {v['verdict']} — {v['measured']}")
    finally:
        appender.close()


def _summary(row: dict) -> str:
    if row["status"] != "ok":
        return f"{row['status']}: {row.get('error') or ''}"
    return (
        f"ok: compile {row['compile_s']:.2f} s, median {row['time_median_s'] * 1e3:.3f} ms "
        f"over {row['repeats']} repeats"
    )
