"""A run, top to bottom: one session of measuring into a run folder.

``python -m bench run`` parses its flags (:mod:`bench.cli`) and hands them to a
:class:`Session`, which owns everything after:

    Session.new      every check first (a refused run leaves nothing behind), then the folder,
                     its lock and env.json;
    Session.resume   the folder's lock, its env.json, the flags against the run's settings,
                     the repair of what a killed run left, a new session in env.json;
    Session.run      calibrate, then each suite's preparation and its cases (built and timed
                     by bench.runner), then the claims' experiments, then the session's end in
                     env.json and the report.

The run folder is passed explicitly to whatever builds a case (``bench.workloads.
BuildContext``); the files in it are written and read by :mod:`bench.store` only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import pathlib
import sys
import time
from collections.abc import Callable, Iterator

import jax

import bench
from bench import claims, environment, lock, plan, report, runner, store, verdicts
from bench.account import TimeAccount
from bench.calibration import Calibration, calibrate
from bench.config import RunConfig
from bench.data import DataError, load_mnist_npz
from bench.runner import Protocol, first_line, identity_row
from bench.sharding import process_suffix
from bench.timing import use_compile_cache
from bench.workloads import IDENTITY, Case, ConfigError, Suite, case_filter, get_suites

LATEST = "latest"  # results/latest: a link to the run folder created last

RESUME_FLAGS = {  # a flag given to --resume must equal the run's setting (RunConfig's field)
    "--repeats": "repeats",
    "--warmup": "warmup",
    "--rounds": "rounds",
    "--case-timeout": "case_timeout_s",
    "--devices": "devices",
    "--data": "data",
}


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclasses.dataclass
class Session:
    """One session of a run: what it measures (``config``, narrowed by ``keep``), where
    (``run_dir``, whose ``env.json`` is ``env``), and by when (``deadline``: ``--budget-s``).
    Its outcome is kept on it as it goes (``failed_claims``, ...)."""

    config: RunConfig
    run_dir: pathlib.Path
    env: dict
    keep: Callable[[Case], bool]  # the cases of this session (the run's, or narrowed)
    in_run: Callable[[Case], bool]  # the cases of the run (its --model and --variant)
    experiments: bool
    deadline: float | None = None  # time.monotonic() at which --budget-s is spent
    log: Callable[[str], None] = _log
    account: TimeAccount = dataclasses.field(default_factory=lambda: TimeAccount(bench.STARTED))
    failed_claims: list[str] = dataclasses.field(default_factory=list)  # experiments in ERROR
    deferred_claims: list[str] = dataclasses.field(default_factory=list)  # over --budget-s
    prepared: set[str] = dataclasses.field(default_factory=set)  # suites prepared (or tried)
    unprepared: dict[str, str] = dataclasses.field(default_factory=dict)  # suite -> why not
    report_path: pathlib.Path | None = None
    complete: bool = False  # a resumed run with nothing left: the session writes nothing

    def __post_init__(self):
        # the cases and experiments that killed earlier sessions (env.json's, fixed all session)
        self.died = store.deaths(self.env)

    # --- Starting: a new run, or a resumed one -------------------------------------------------

    @classmethod
    @contextlib.contextmanager
    def new(
        cls,
        config: RunConfig,
        *,
        out: pathlib.Path,
        name: str | None,
        argv: list[str],
        allow_slow: bool = False,
        deadline: float | None = None,
    ) -> Iterator[Session]:
        """A new run folder under ``out``, locked while the session lasts. Every check comes
        before the first write: a refused run leaves nothing behind."""
        chosen = get_suites(config.suites)
        check_out(out, name)
        if config.data is not None:
            check_data(config.data)
        keep = config.case_filter(chosen)
        check_devices(config.devices)
        use_compile_cache(config.compile_cache)
        slow = plan.refuse_oversized(
            chosen, config.profile, jax.default_backend(), allowed=allow_slow, flag="--allow-slow"
        )
        run_id = (name or environment.new_run_id()) + process_suffix()
        if name and (out / run_id).exists():
            raise ConfigError(f"--name {name}: {out / run_id} exists already")
        if slow:
            print(f"bench: {slow}", file=sys.stderr)
        account = TimeAccount(bench.STARTED)
        calibration = _calibrate(config.profile, account)  # before the folder: nothing to lose
        run_dir = store.create_run_dir(out, run_id)
        run_id = run_dir.name  # (with the suffix a clash gave it: one id, one folder)
        with writing(run_dir), lock.RunLock(run_dir):
            env = environment.environment(run_id, config, ["python -m bench", *argv])
            env.update(load_avg_start=load_avg(), calibration=calibration)
            store.write_json(run_dir / "env.json", env)  # the session's first write of two
            point_latest(out, run_dir)
            yield cls(
                config, run_dir, env, keep, keep, config.experiments, deadline, account=account
            )

    @classmethod
    @contextlib.contextmanager
    def resume(
        cls,
        run_dir: pathlib.Path,
        *,
        argv: list[str],
        asked: dict,
        models=None,
        variants=None,
        experiments: bool = True,
        allow_mixed: bool = False,
        retry_crashed: bool = False,
        deadline: float | None = None,
    ) -> Iterator[Session]:
        """The run in ``run_dir`` continued with its own settings: ``asked`` (flag -> value
        given, ``None`` when not given) must agree with them; ``models`` / ``variants`` /
        ``experiments=False`` narrow this session only. Everything is checked under the
        folder's lock, before any write; then a folder a killed run left is repaired."""
        if not (run_dir / "env.json").is_file():
            raise ConfigError(f"--resume {run_dir}: not a run folder (no env.json)")
        with writing(run_dir), lock.RunLock(run_dir):
            env = _resumable_env(run_dir)
            config = RunConfig.from_env(env)
            _check_asked(config, asked)
            chosen = get_suites(config.suites)
            in_run = config.case_filter(chosen)
            cases = [c for s in chosen for c in s.cases(config.profile) if in_run(c)]
            run_cases = {c.key(config.devices) for c in cases}  # what env.json's settings give
            keep = in_run
            if models or variants:  # this session only
                only = case_filter(chosen, config.profile, models, variants)
                keep = lambda case: in_run(case) and only(case)  # noqa: E731
            check_devices(config.devices, env.get("jax_env"))
            values = environment.check_settings(
                run_dir, env, allow_mixed=allow_mixed, cases=run_cases, described=_settings(config)
            )
            if retry_crashed:
                values = {**values, store.RETRY: True}
            repair_or_refuse(run_dir)  # repaired if a run was killed; refused if damaged
            experiments = config.experiments and experiments
            if _complete(run_dir, env, config, cases, experiments):
                # nothing to measure, no claim to decide, its last session ended: the folder
                # stays as it is (no session added to env.json, the report not rewritten)
                yield cls(config, run_dir, env, keep, in_run, False, deadline, complete=True)
                return
            account = TimeAccount(bench.STARTED)
            if "calibration" not in env:  # (a run folder of an older version)
                env = {**env, "calibration": _calibrate(config.profile, account)}
            env = store.begin_session(
                run_dir, env, ["python -m bench", *argv], values, first_row=store.row_count(run_dir)
            )
            use_compile_cache(config.compile_cache)
            yield cls(config, run_dir, env, keep, in_run, experiments, deadline, account=account)

    # --- The run -------------------------------------------------------------------------------

    def run(self) -> int:
        """Measure what the session has left, then report; returns the exit status."""
        if self.complete:
            self.log(
                f"this run is already complete: every case has its row, every claim its verdict "
                f"and its last session ended; {self.run_dir} is left as it is"
            )
            print(f"results in {self.run_dir}/ (report: {self.run_dir / 'report.md'})")
            return 0
        self.log(
            f"run folder: {self.run_dir} (profile {self.config.profile}, {jax.device_count()} × "
            f"{jax.devices()[0].device_kind})"
        )
        booked = sum(self.account.parts.values())  # (the calibration, measured before)
        startup = time.perf_counter() - bench.STARTED - booked
        self.account.add("start-up (imports, checks, env.json)", startup)
        calibration = Calibration.from_dict(self.env["calibration"])  # one per run folder
        with runner.user_signals():
            runner.check_stop()  # (a Ctrl-C swallowed while the run started)
            self.measure_cases(Protocol.of(self.config, self.run_id, self.run_dir, calibration))
            if self.experiments:
                self.run_experiments()
            self.finish()
            runner.check_stop()  # (one swallowed in the report's rendering)
        return self.tell_user()

    @property
    def run_id(self) -> str:
        return self.env["run_id"]

    # --- The cases -----------------------------------------------------------------------------

    def measure_cases(self, how: Protocol) -> None:
        """Measure every case of the session not yet in the folder: a case alone, or a sweep
        group together (:func:`units`); each unit's rows are written as it ends."""
        listing = time.perf_counter()
        chosen = get_suites(self.config.suites)
        done = store.completed_keys(self.run_dir)
        cases = [c for s in chosen for c in s.cases(self.config.profile) if self.keep(c)]
        todo = [c for c in cases if c.key(self.config.devices) not in done]
        if done:
            self.log(
                f"resuming {self.run_dir}: {len(cases) - len(todo)} of {len(cases)} cases "
                "already done"
            )
            if not todo:
                self.log("this run is already complete: no case left to measure")
        self.account.add("listing cases, checking the folder", time.perf_counter() - listing)
        cost = cal = None
        if self.deadline is not None:
            self.log("measuring the compile cost, for --budget-s ...")
            cost, cal = plan.compile_cost(), how.calibration
        suites = {s.name: s for s in chosen}
        with contextlib.ExitStack() as stack:
            out = _Output(self.run_dir, stack)
            worker = None  # under --case-timeout, the process that measures the cases
            if self.config.case_timeout_s:
                worker = runner.IsolatedRunner(self.config)
                stack.callback(worker.close)
            stack.callback(store.clear_in_flight, self.run_dir)  # not a death: user or disk
            progress = _Progress(len(todo), self.log)
            for unit in units(todo):
                runner.check_stop()
                for name in dict.fromkeys(c.suite for c in unit):
                    self.prepare(suites[name])
                budget = None if cost is None else plan.Budget(self._left_s(), cost, cal)
                self.measure_unit(unit, how, budget, out, progress, worker)

    def prepare(self, suite: Suite) -> None:
        """A suite's preparation (training the models its cases sample), once per session,
        before its first case; what it wrote already is reused. A failure is logged: its
        cases then fail one by one, as rows."""
        if suite.prepare is None or suite.name in self.prepared:
            return
        self.prepared.add(suite.name)
        need = suite.prepare_cost_s.get(self.config.profile, 0.0)
        if self.deadline is not None and need > self._left_s():
            self.unprepared[suite.name] = f"its preparation (~{need:.0f} s) did not fit"
            self.log(f"not preparing {suite.name}: ~{need:.0f} s do not fit --budget-s")
            return
        self.log(f"preparing {suite.name} ...")
        began = time.perf_counter()
        try:
            with self.account.spend(f"prepare {suite.name}"):
                suite.prepare(self.config, self.run_dir)
            self.log(f"    prepared ({time.perf_counter() - began:.1f} s)")
        except BaseException as e:
            if runner.users(e):
                raise
            self.log(f"    preparing {suite.name} failed: {first_line(e)}")

    def measure_unit(self, unit: list[Case], how: Protocol, budget, out, progress, worker) -> None:
        """Measure one case, or one sweep group, and write its samples, then its rows: a case
        counts as done once its row is written, and a group's rows are written together (a
        kill re-measures it whole)."""
        t0 = time.perf_counter()
        results: dict[int, tuple[dict, list]] = {}
        timed = []
        for j, case in enumerate(unit):
            row = self._not_measured(case, how)
            if row is not None:
                if row["status"] == "crashed":
                    progress.skip(j, case)
                results[j] = (row, [])
            else:
                timed.append(j)
        if timed:
            cases = [unit[j] for j in timed]
            progress.start(unit, timed, self.config.rounds)
            if worker is not None:
                self._mark(cases[0] if len(cases) == 1 else None, cases)
                found = worker.measure(cases, how, budget)
            else:
                mark = lambda case, group=tuple(cases): self._mark(case, group)  # noqa: E731
                found = runner.measure(cases, how, budget=budget, log=self.log, on_case=mark)
            runner.check_stop()  # an interrupt swallowed inside the case: its row is not kept
            results.update(zip(timed, found, strict=True))
        rows = [results[j][0] for j in range(len(unit))]
        out.write(rows, [results[j][1] for j in range(len(unit))])
        store.clear_in_flight(self.run_dir)
        self.account.add_unit(rows, time.perf_counter() - t0)
        progress.done(unit, rows, time.perf_counter() - t0)

    def _not_measured(self, case: Case, how: Protocol) -> dict | None:
        """The row of a case this session will not measure, with the reason, or ``None``: it
        killed the bench process too often, or its suite's preparation did not fit."""
        key = store.case_death_key(case.key(self.config.devices))
        deaths = self.died.get(key, 0)
        if deaths >= store.CRASH_LIMIT:
            return {**identity_row(case, how), "status": "crashed", "error": _killed(deaths)}
        if case.suite in self.unprepared:
            why = f"{self.unprepared[case.suite]} in --budget-s; --resume measures it"
            return {**identity_row(case, how), "status": "skipped", "error": why}
        return None

    def _mark(self, case: Case | None, group: tuple[Case, ...]) -> None:
        """Mark in the folder what is being measured (a case, or a group's rounds), so a
        session the case kills is counted against it by the next ``--resume``."""
        devices = self.config.devices
        if case is not None:
            what = {"case": case.label, "key": list(case.key(devices))}
        else:
            what = {
                "interleaved": [c.label for c in group],
                "keys": [list(c.key(devices)) for c in group],
            }
        store.mark_in_flight(self.run_dir, what)

    def _left_s(self) -> float:
        return self.deadline - time.monotonic()

    # --- The claims' experiments ---------------------------------------------------------------

    def run_experiments(self) -> None:
        """Run each claim experiment of the run's suites with a claim missing or ERROR in
        ``claims.csv``; its verdicts replace any earlier rows of its claims, as one block
        (:func:`bench.store.record_claims`). One whose declared cost does not fit what is left
        of ``--budget-s`` is not started: its claims stay missing, so ``--resume`` runs it."""
        path = self.run_dir / "claims.csv"
        done = store.recorded_claims(path)
        try:
            for experiment in claims.experiments(self.config.suites):
                if set(experiment.claims) <= done:
                    continue
                runner.check_stop()
                named = ", ".join(dict.fromkeys(experiment.claims))  # one experiment, many rows
                need = experiment.cost_s.get(self.config.profile, 0.0)
                if self.deadline is not None and need > self._left_s():
                    self.log(f"claims {named}: not run, ~{need:.0f} s do not fit")
                    self.deferred_claims.extend(dict.fromkeys(experiment.claims))
                    continue
                began = time.perf_counter()
                verdicts, ran = self.run_experiment(experiment, named)
                rows = [{"run_id": self.run_id, "suite": experiment.suite, **v} for v in verdicts]
                store.record_claims(path, rows)
                store.clear_in_flight(self.run_dir)
                for v in verdicts:
                    self.log(f"    {v['claim']}: {v['verdict']} — {v['measured']}")
                    if v["verdict"] == "ERROR":
                        self.failed_claims.append(v["claim"])
                if ran:
                    self.log(f"    ({time.perf_counter() - began:.1f} s)")
        finally:
            store.clear_in_flight(self.run_dir)

    def run_experiment(self, experiment: claims.Experiment, named: str) -> tuple[list[dict], bool]:
        """One experiment's verdicts as claims.csv rows, and whether it ran: ERROR rows when it
        crashed, or when it killed the bench process :data:`bench.store.CRASH_LIMIT` times
        already (then it is not run again)."""
        deaths = self.died.get(store.experiment_death_key(experiment.claims), 0)
        check = f"{experiment.suite} experiment"

        def errors(why: str) -> list[dict]:
            return [
                dict(claim=c, verdict="ERROR", check=check, measured=why) for c in experiment.claims
            ]

        if deaths >= store.CRASH_LIMIT:
            return errors(_killed(deaths)), False
        self.log(f"claims {named} ({experiment.suite}) ...")
        store.mark_in_flight(self.run_dir, {"experiment": list(experiment.claims)})
        try:
            with self.account.spend(f"claims {named}"):
                found = experiment.run(self.config.profile, self.run_dir)
            verdicts = [v.as_row() for v in found]
        except BaseException as e:
            if runner.users(e):
                raise
            verdicts = errors(f"experiment crashed: {first_line(e)}")
        runner.check_stop()
        return verdicts, True

    # --- The end: env.json, the report, what the user is told ----------------------------------

    def finish(self) -> None:
        """Stamp the session's end and its time account, render the report, and write
        env.json: the session's second and last write of it. The report's own time is booked
        apart (``report_s``), so a re-render gives the same report."""
        env = {**self.env, "load_avg_finish": load_avg()}
        env = store.end_session(env, time_s=self.account.closed())
        began = time.perf_counter()
        try:
            self.report_path = report.render(verdicts.judge_run(self.run_dir), env=env)
        finally:  # (a report that fails keeps the session's end)
            spent = round(time.perf_counter() - began, 3)
            self.env = store.with_last_session(env, report_s=spent)
            store.write_json(self.run_dir / "env.json", self.env)

    def cases_left(self) -> int:
        """Cases of the run (not only of this session) still without a row."""
        recorded = store.completed_keys(self.run_dir)
        return sum(
            c.key(self.config.devices) not in recorded
            for s in get_suites(self.config.suites)
            for c in s.cases(self.config.profile)
            if self.in_run(c)
        )

    def tell_user(self) -> int:
        """Where the results are and what is left to do; the exit status (1: a claim's
        experiment ended in ERROR)."""
        print(f"results in {self.run_dir}/ (report: {self.report_path})")
        resume = f"--resume {self.run_dir}"
        left = self.cases_left()
        if left:
            _warn(
                f"{left} case(s) of the run not measured yet (this session was narrowed, they "
                "did not fit --budget-s, or a point of their sweep group hung or crashed): "
                f"{resume} measures them"
            )
        if self.deferred_claims:
            _warn(
                f"claims {', '.join(self.deferred_claims)}: their experiments did not fit "
                f"--budget-s: {resume} runs them"
            )
        failed = list(dict.fromkeys(self.failed_claims))
        given_up = store.given_up(self.env)
        crashed = [c for c in failed if c in given_up]
        errors = [c for c in failed if c not in given_up]
        if crashed:
            _warn(
                f"the experiment of {', '.join(crashed)} killed the bench process "
                f"{max(given_up[c] for c in crashed)} times and is not run again (ERROR in "
                f"claims.csv): {resume} --retry-crashed tries it again"
            )
        if errors:
            _warn(
                f"the experiment of {', '.join(errors)} failed (ERROR in claims.csv): "
                f"{resume} runs it again"
            )
        return 1 if failed else 0


# --- The cases' order and progress ---------------------------------------------------------------


def units(todo: list[Case]) -> list[list[Case]]:
    """The session's cases as units of measurement, in order: a case alone, or every case of a
    sweep group (:attr:`bench.workloads.Case.sweep_group`) together, where its first one is."""
    groups: dict[str, list[Case]] = {}
    for case in todo:
        if case.sweep_group is not None:
            groups.setdefault(case.sweep_group, []).append(case)
    out, seen = [], set()
    for case in todo:
        if case.sweep_group is None:
            out.append([case])
        elif case.sweep_group not in seen:
            seen.add(case.sweep_group)
            out.append(groups[case.sweep_group])
    return out


class _Output:
    """The session's two appended files, ``measurements.csv`` and ``samples.csv`` (closed
    with ``stack``)."""

    def __init__(self, run_dir: pathlib.Path, stack: contextlib.ExitStack):
        self.rows = store.CsvAppender(run_dir / "measurements.csv", store.COLUMNS)
        stack.callback(self.rows.close)
        self.samples = store.CsvAppender(run_dir / "samples.csv", store.SAMPLE_COLUMNS)
        stack.callback(self.samples.close)

    def write(self, rows: list[dict], samples: list[list[dict]]) -> None:
        for row, found in zip(rows, samples, strict=True):
            identity = {k: row.get(k) for k in ("run_id", *IDENTITY)}
            self.samples.write_many({**identity, **sample} for sample in found)
        for row in rows:
            self.rows.write(row)


class _Progress:
    """The ``[i/n]`` lines on stderr, with the time left at the session's pace so far."""

    def __init__(self, total: int, log: Callable[[str], None]):
        self.total, self.log, self.done_cases = total, log, 0
        self.started = time.monotonic()

    def skip(self, j: int, case: Case) -> None:
        self.log(f"[{self.done_cases + j + 1}/{self.total}] {case.label}: not measured again")

    def start(self, unit: list[Case], timed: list[int], rounds: int) -> None:
        eta = _eta(time.monotonic() - self.started, self.done_cases, self.total)
        first = self.done_cases + timed[0] + 1
        if len(unit) == 1:
            self.log(f"[{first}/{self.total}] {unit[0].label}: compiling and timing ...{eta}")
        else:
            self.log(
                f"[{first}-{self.done_cases + len(unit)}/{self.total}] sweep group "
                f"{unit[0].sweep_group}: {len(timed)} cases, compiled first, then "
                f"timed in {rounds} interleaved rounds ...{eta}"
            )

    def done(self, unit: list[Case], rows: list[dict], elapsed_s: float) -> None:
        self.done_cases += len(unit)
        for case, row in zip(unit, rows, strict=True):
            prefix = f"    {case.label}: " if len(unit) > 1 else "    "
            self.log(f"{prefix}{_summary(row)}")
        self.log(f"    ({elapsed_s:.1f} s)")


def _eta(elapsed_s: float, done: int, total: int) -> str:
    """The time the session's cases have left at this session's pace so far.

    From the pace, not from the plan: a plan builds and traces every case first, which would
    add its own minutes to every run; the pace is exact once a few cases have run."""
    if done < 3:
        return ""
    left_s = elapsed_s / done * (total - done)
    return f" (~{left_s / 60:.0f} min left)" if left_s >= 90 else f" (~{left_s:.0f} s left)"


def _summary(row: dict) -> str:
    if row["status"] != "ok":
        return f"{row['status']}: {row.get('error') or ''}"
    return (
        f"ok: compile {row['compile_s']:.2f} s, median {row['time_median_s'] * 1e3:.3f} ms "
        f"over {row['repeats']} repeats"
    )


def _killed(deaths: int) -> str:
    return (
        f"killed the bench process {deaths} times while being measured; not tried again "
        "(see the sessions in env.json)"
    )


def _warn(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr)


# --- Checks and set-up ---------------------------------------------------------------------------


def _calibrate(profile: str, account: TimeAccount) -> dict:
    """The device's constants (:func:`bench.calibration.calibrate`), measured once per run
    folder: a resume keeps the first."""
    _log("calibrating the device ...")
    with account.spend("calibration"):
        return calibrate(profile).as_dict()


def _complete(
    run_dir: pathlib.Path, env: dict, config: RunConfig, cases: list[Case], experiments: bool
) -> bool:
    """A run a resume has nothing to add to: every case of the run has its row, every claim
    of its experiments (when this session runs them) a verdict other than ERROR, and its last
    session ended (a session killed while it rendered the report is continued: the report is
    rendered then)."""
    done = store.completed_keys(run_dir)
    if any(c.key(config.devices) not in done for c in cases):
        return False
    if experiments:
        recorded = store.recorded_claims(run_dir / "claims.csv")
        if any(not set(e.claims) <= recorded for e in claims.experiments(config.suites)):
            return False
    return "finished_utc" in env and "finished_utc" in store.sessions(env)[-1]


def _resumable_env(run_dir: pathlib.Path) -> dict:
    """The run's env.json, if this version can continue it."""
    try:
        env = store.load_env(run_dir)
    except store.SchemaError as e:
        raise ConfigError(str(e)) from None
    if env["schema_version"] != store.SCHEMA_VERSION:
        raise ConfigError(
            f"--resume {run_dir}: a schema-v{env['schema_version']} run folder; this version "
            f"writes v{store.SCHEMA_VERSION} (report and compare read it; start a new run)"
        )
    return env


def _check_asked(config: RunConfig, asked: dict) -> None:
    """Refuse a flag given to ``--resume`` that differs from the run's own setting."""
    if asked.get("--profile") and asked["--profile"] != config.profile:
        raise ConfigError(f"--profile {asked['--profile']} differs from the run's {config.profile}")
    if asked.get("--suite") and set(asked["--suite"]) != set(config.suites):
        raise ConfigError(f"--suite differs from the run's suites {list(config.suites)}")
    for flag, field in RESUME_FLAGS.items():
        given, recorded = asked.get(flag), getattr(config, field)
        if given is not None and given != recorded:
            raise ConfigError(f"{flag} {given} differs from the run's {recorded}")


def _settings(config: RunConfig) -> str:
    """The run settings that decide its cases, in words."""
    words = [f"profile {config.profile!r}", f"suites {list(config.suites)}"]
    words += [f"--devices {config.devices}"]
    words += [f"models {list(config.models)}"] if config.models else []
    words += [f"variants {list(config.variants)}"] if config.variants else []
    return ", ".join(words)


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


@contextlib.contextmanager
def writing(run_dir: pathlib.Path):
    """A failed write to the run folder (full disk, read-only, ...) as one line; an interrupt
    carries the folder, so the message can name it."""
    try:
        yield
    except OSError as e:
        raise store.io_failure(run_dir, e) from None
    except KeyboardInterrupt as e:
        e.run_dir = run_dir
        raise


def load_avg() -> list[float] | None:
    """The machine's 1, 5 and 15-minute load averages (what else was running), if known."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def point_latest(parent: pathlib.Path, run_dir: pathlib.Path) -> None:
    """Point ``parent/latest`` at ``run_dir``: a relative symbolic link, so ``results/latest``
    works as a run folder for every command and survives moving ``results/``; replaced
    atomically (a new link renamed over the old one)."""
    link, tmp = parent / LATEST, parent / f".{LATEST}.{os.getpid()}"
    try:
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(run_dir.name, target_is_directory=True)
        os.replace(tmp, link)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        print(f"bench: note: {link} not updated ({e})", file=sys.stderr)


def check_data(path: str) -> None:
    """Refuse a --data file that cannot be used, before anything is written."""
    try:
        load_mnist_npz(path)
    except DataError as e:
        raise ConfigError(str(e)) from None


DEVICE_COUNT_ENV = "JAX_NUM_CPU_DEVICES"  # how many devices JAX makes of the CPU


def check_devices(devices: int, jax_env: dict | None = None) -> int:
    """Refuse a device count the machine lacks, before any run, naming the variable that
    makes CPU devices (and its value when the run, whose ``jax_env`` is given, had it).
    (Cases whose batch it does not divide run on one device; their rows say so.)"""
    if devices > jax.device_count():
        hint = ""
        if jax.default_backend() == "cpu":
            ran = (jax_env or {}).get(DEVICE_COUNT_ENV)
            now = os.environ.get(DEVICE_COUNT_ENV)
            hint = (
                f"; the run was made with {DEVICE_COUNT_ENV}={ran} (env.json jax_env), here it "
                + (f"is {now}" if now else "is not set")
                + ": set it as the run had it"
                if ran and ran != now
                else f"; on CPU, {DEVICE_COUNT_ENV}={devices} makes {devices} devices"
            )
        raise ConfigError(f"--devices {devices}: only {jax.device_count()} device(s) visible{hint}")
    return devices


def check_out(out: pathlib.Path, name: str | None) -> None:
    """Refuse an ``--out`` (and ``--name`` in it) that cannot hold a run folder, before the
    first write: a loop of symbolic links, a path too long, a file."""
    for path in (out, out / name) if name else (out,):
        try:
            path.stat()
        except FileNotFoundError:
            continue  # (made when the run starts)
        except OSError as e:
            what = "a loop of symbolic links" if e.errno == errno.ELOOP else store._reason(e)
            flag = "--out" if path == out else "--name"
            shown = (
                str(path)
                if len(str(path)) <= 80
                else f"{str(path)[:60]}... ({len(str(path))} characters)"
            )
            raise ConfigError(f"{flag} {shown}: {what}") from None
        if path == out and not path.is_dir():
            raise ConfigError(f"--out {out}: a file is in the way of a folder")
