"""Command line: ``python -m bench {run,plan,report,compare,history,list} ...``.

A bad argument is one line on stderr and exit status 2, before anything is written.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import pathlib
import sys
import time

import jax
import pandas as pd

import bench
from bench import estimate, history, plan, report, runner, store
from bench.account import TimeAccount
from bench.calibration import calibrate
from bench.compare import (
    PROBLEMS,
    THRESHOLD,
    CompareError,
    compare,
    last_runs,
    last_saves,
    open_run,
    remeasure,
    render,
)
from bench.config import RunConfig
from bench.data import DataError, load_mnist_npz
from bench.sharding import maybe_initialize_distributed, process_suffix
from bench.store import SchemaError, load_env
from bench.timing import default_cache_dir, use_compile_cache
from bench.workloads import (
    PROFILES,
    ConfigError,
    case_filter,
    check_profile,
    default_profile,
    get_suites,
    planning,
    plugin_errors,
    suites,
)

DESCRIPTION = "seqdepth-bench: time, verify and compare the models of the CSE 891 HW3 solution."
EPILOG = """`python -m bench COMMAND --help` shows a command's options.
Exit status: 0 done; 1 compare found a regression, or a claim's experiment ended in ERROR
(run); 2 bad input (one line on stderr); 3 compare: slower cases while the whole machine moved
(re-run on a quiet machine); 130 interrupted (finished cases are kept)."""

RESULTS = pathlib.Path("results")
LATEST = "latest"  # results/latest: a link to the run folder created last
BENCHMARK_STORAGE = RESULTS / "pytest-benchmark"  # where `make bench-pytest` saves


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        raise ConfigError(message)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _finite(text: str, *, zero_ok: bool) -> float:
    what = "a finite number ≥ 0" if zero_ok else "a positive finite number"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not (math.isfinite(value) and (value >= 0 if zero_ok else value > 0)):
        raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
    return value


def _positive_float(text: str) -> float:
    return _finite(text, zero_ok=False)


RUN_NAME_MAX = 100  # characters: a folder name, with room for the suffixes a run may add


def _run_name(text: str) -> str:
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
    if len(text) > RUN_NAME_MAX:
        raise argparse.ArgumentTypeError(
            f"{text[:20]!r}... ({len(text)} characters): a run name is at most {RUN_NAME_MAX}"
        )
    if not text or text[0] in ".-" or not set(text) <= allowed or text == LATEST:
        raise argparse.ArgumentTypeError(
            f"{text!r}: a run name is letters, digits, '.', '_' and '-', not starting with "
            f"'.' or '-', and not {LATEST!r}"
        )
    return text


def _threshold(text: str) -> float:
    return _finite(text, zero_ok=True)


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m bench",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="measure suites into a new run folder")
    run.add_argument(
        "--suite",
        action="append",
        metavar="NAME",
        help="suite to run (repeatable; default: all; see `list`)",
    )
    run.add_argument(
        "--model",
        action="append",
        metavar="NAME",
        help="only the cases of this model (repeatable; see `list --profile P`)",
    )
    run.add_argument(
        "--variant",
        action="append",
        metavar="NAME",
        help="only the cases of this variant (repeatable)",
    )
    run.add_argument(
        "--profile",
        choices=None,
        metavar="|".join(PROFILES),
        help="sizes to run (default: cpu on CPU, full on GPU/TPU)",
    )
    run.add_argument(
        "--out",
        type=pathlib.Path,
        default=RESULTS,
        help="parent folder of the run folder (default: results/)",
    )
    run.add_argument(
        "--name",
        type=_run_name,
        help="name of the new run folder (default: UTC time and git sha); refused if it exists",
    )
    run.add_argument(
        "--allow-slow",
        action="store_true",
        help="run a profile larger than the device suits (e.g. full on a CPU), which is "
        "otherwise refused with its estimated time",
    )
    run.add_argument(
        "--repeats",
        type=_positive_int,
        help="timed repeats per case (default by profile: smoke 2, cpu 5, full 10)",
    )
    run.add_argument(
        "--warmup",
        type=_positive_int,
        help="untimed calls after the first, before timing (default 1)",
    )
    run.add_argument(
        "--rounds",
        type=_positive_int,
        help="interleaved rounds of each sweep group (the latency-regime cases a wall-time "
        "verdict reads; default by profile: smoke 3, cpu 12, full 20)",
    )
    run.add_argument(
        "--resume",
        type=pathlib.Path,
        metavar="RUN_DIR",
        help="measure only the cases missing from an existing run folder",
    )
    run.add_argument(
        "--case-timeout",
        type=_positive_float,
        metavar="S",
        help="stop a case after S seconds (status timeout); runs cases in a worker process",
    )
    run.add_argument(
        "--budget-s",
        type=_positive_float,
        metavar="S",
        help="this session's time budget: a case (or claim experiment) whose estimate does not "
        "fit what is left is not started (status skipped); --resume measures it later",
    )
    run.add_argument(
        "--devices",
        type=_positive_int,
        metavar="N",
        help="run training cases data-parallel over N local devices (default: 1)",
    )
    run.add_argument(
        "--data",
        metavar="PATH",
        help="binarised MNIST from a local mnist.npz (x_train, x_test) for the trained suite "
        "(default: the 8×8 digits that ship with scikit-learn)",
    )
    run.add_argument(
        "--no-compile-cache",
        action="store_true",
        help="do not use JAX's persistent compilation cache (default: on, in "
        "$XDG_CACHE_HOME/seqdepth-bench/jax, else ~/.cache/seqdepth-bench/jax; each row "
        "says whether it hit)",
    )
    run.add_argument(
        "--trace",
        metavar="DIR",
        help="write a jax.profiler trace of each measured case's timed calls under DIR "
        "(one folder per case; open in Perfetto or XProf)",
    )
    run.add_argument(
        "--no-experiments",
        action="store_true",
        help="time the cases only; skip the claim experiments",
    )
    run.add_argument(
        "--allow-mixed",
        action="store_true",
        help="with --resume: continue although the code version, devices, platform or flags "
        "differ from the run's (env.json then records each session's)",
    )
    run.add_argument(
        "--retry-crashed",
        action="store_true",
        help="with --resume: run again the claims' experiments that killed the bench process "
        "twice (otherwise given up, their claims ERROR)",
    )

    report = sub.add_parser("report", help="re-render report.md (and plots) of a run folder")
    report.add_argument("run_dir", type=pathlib.Path)

    cmp = sub.add_parser(
        "compare",
        help="compare two runs case by case; exit 1 on a regression, 2 if they cannot be, "
        "3 if the machine moved",
        description="Lists the cases that broke (ok → another status), vanished or appeared, "
        "and those significantly slower (or faster) by more than the threshold: the 95% "
        "bootstrap interval of the ratio of median times, from the raw samples, lies above "
        "1 + threshold (and, where both runs were timed in interleaved rounds, the change "
        "exceeds 3× their combined between-round spread). Exit 0: no regression; 1: a "
        "regression (a case broke, vanished, appeared, or got slower); 2: could not compare; "
        "3: machine moved: the only problems are slower cases and the whole machine moved "
        "between the runs (calibration or typical case beyond the threshold, or a load average "
        "above the cores): re-run on a quiet machine.",
    )
    cmp.add_argument(
        "runs",
        nargs="*",
        type=pathlib.Path,
        metavar="RUN",
        help="old and new run: run folders, or pytest-benchmark saves (JSON); default: "
        f"the two run folders under {RESULTS}/ started last",
    )
    cmp.add_argument(
        "--threshold",
        type=_threshold,
        default=THRESHOLD,
        help="a slowdown must exceed this fraction, significantly (default %(default)s)",
    )
    cmp.add_argument(
        "--normalise",
        "--normalize",
        action="store_true",
        help="divide each run's times by its own calibration (env.json's matmul rate, else "
        "the matmul/peak case) before comparing: the machine's speed cancels",
    )
    cmp.add_argument(
        "--pytest-benchmark",
        action="store_true",
        help=f"with no RUN: the last two pytest-benchmark saves in {BENCHMARK_STORAGE}/",
    )
    cmp.add_argument(
        "--allow",
        action="append",
        choices=PROBLEMS,
        default=[],
        help="do not fail on cases with this outcome (repeatable; e.g. --allow appeared)",
    )
    cmp.add_argument("--all", action="store_true", help="also list every timed case's ratio")
    cmp.add_argument(
        "--remeasure",
        action="store_true",
        help="time the cases flagged slower again in this checkout (the new run's commit), in "
        "interleaved rounds, and decide on those times (a case slow only while the machine "
        "was busy comes back unchanged)",
    )

    hist = sub.add_parser(
        "history",
        help="one case or suite across every run folder: history.csv and history.png",
        description="Reads every run folder under RESULTS and writes history.csv (one row per "
        "case and run) and history.png: each run's median time against its commit (short SHA) "
        "and start date, with the run's own noise band (IQR of its per-round medians, else of "
        "its samples).",
    )
    hist.add_argument("results", nargs="?", type=pathlib.Path, default=RESULTS, metavar="RESULTS")
    hist.add_argument("--suite", action="append", metavar="NAME", help="only this suite")
    hist.add_argument("--case", metavar="TEXT", help="only cases whose label contains TEXT")
    hist.add_argument(
        "--out", type=pathlib.Path, help="folder for history.csv/.png (default: RESULTS)"
    )

    lst = sub.add_parser("list", help="list suites, or the cases of a profile")
    lst.add_argument("--profile", metavar="|".join(PROFILES))

    planner = sub.add_parser(
        "plan", help="estimate each case's time and the total, before running (builds, traces)"
    )
    planner.add_argument("--profile", metavar="|".join(PROFILES))
    planner.add_argument("--suite", action="append", metavar="NAME")
    planner.add_argument("--model", action="append", metavar="NAME")
    planner.add_argument("--variant", action="append", metavar="NAME")
    planner.add_argument("--repeats", type=_positive_int)
    planner.add_argument("--no-experiments", action="store_true")
    planner.add_argument(
        "--assume",
        choices=sorted(plan.ASSUMED),
        help="plan for another device, with stated constants instead of calibrating this one",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    argv_given = argv is not None
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parser().parse_args(argv)
        status = COMMANDS[args.command](args, argv)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler below
        return status
    except BrokenPipeError:
        # The reader of stdout went away (`python -m bench list | head`): stop quietly, as a
        # command killed by SIGPIPE would, and keep Python's exit flush from raising again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except ConfigError as e:
        print(f"bench: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        run_dir = getattr(e, "run_dir", None)
        print(
            "bench: interrupted"
            + (
                f"; finished cases are saved (resume with --resume {run_dir})"
                if run_dir is not None
                else ""
            ),
            file=sys.stderr,
            flush=True,
        )
        return 128 + getattr(e, "signum", 2)
    finally:
        # A run the user stopped leaves SIGINT and SIGTERM ignored (runner.user_signals): the
        # program exits next. A caller in this process (argv given: the tests) gets its own
        # handlers back.
        if argv_given:
            runner.restore_signals()


def cmd_run(args, argv) -> int:
    # Joining a multi-process cluster must come before anything touches a device, so it is
    # the first thing a run does (the imports above create no arrays).
    maybe_initialize_distributed()
    args.deadline = None if args.budget_s is None else time.monotonic() + args.budget_s
    if args.resume is not None:
        return _resume(args, argv)
    for flag, given in (
        ("--allow-mixed", args.allow_mixed),
        ("--retry-crashed", args.retry_crashed),
    ):
        if given:
            raise ConfigError(f"{flag} is for --resume")
    chosen = get_suites(args.suite)
    config = RunConfig.create(
        profile=check_profile(args.profile or default_profile(jax.default_backend())),
        suites=[s.name for s in chosen],
        repeats=args.repeats,
        warmup=args.warmup,
        rounds=args.rounds,
        models=args.model,
        variants=args.variant,
        case_timeout_s=args.case_timeout,
        devices=args.devices,
        experiments=not args.no_experiments,
        data=str(pathlib.Path(args.data).absolute()) if args.data else None,
        compile_cache=None if args.no_compile_cache else default_cache_dir(),
        trace_dir=str(pathlib.Path(args.trace).absolute()) if args.trace else None,
    )
    if config.data is not None:
        check_data(config.data)
    # every check before the first write: a refused run leaves nothing behind
    keep = case_filter(chosen, config.profile, config.models or None, config.variants or None)
    check_devices(config.devices)
    use_compile_cache(config.compile_cache)
    backend = jax.default_backend()
    slow = estimate.check(
        chosen, config.profile, backend, allowed=args.allow_slow, flag="--allow-slow"
    )
    run_id = (args.name or store.new_run_id()) + process_suffix()
    if args.name and (args.out / run_id).exists():
        raise ConfigError(f"--name {args.name}: {args.out / run_id} exists already")
    if slow:
        print(f"bench: {slow}", file=sys.stderr)
    run_dir = store.create_run_dir(args.out, run_id)
    run_id = run_dir.name  # (with the suffix a clash gave it: one id, one folder)
    with _writing(run_dir), store.RunLock(run_dir):
        env = store.environment(run_id, config, ["python -m bench", *argv])
        env["load_avg_start"] = _load_avg()
        store.write_json(run_dir / "env.json", env)
        point_latest(args.out, run_dir)
        return _measure(config, run_id, run_dir, env, keep, deadline=args.deadline)


def _resume(args, argv) -> int:
    """``run --resume RUN_DIR``: the run's own settings continue it. Flags that would change
    how it measures are refused; ``--model`` / ``--variant`` / ``--no-experiments`` narrow
    this session only. Everything is checked under the folder's lock, before any write."""
    run_dir = args.resume
    if args.name or args.allow_slow:
        raise ConfigError("--name and --allow-slow are for a new run, not --resume")
    if args.trace or args.no_compile_cache:
        raise ConfigError(
            "--trace and --no-compile-cache are a run's settings: a resume keeps the run's"
        )
    if not (run_dir / "env.json").is_file():
        raise ConfigError(f"--resume {run_dir}: not a run folder (no env.json)")
    with _writing(run_dir), store.RunLock(run_dir):
        try:
            env = load_env(run_dir)
        except SchemaError as e:
            raise ConfigError(str(e)) from None
        if env["schema_version"] != store.SCHEMA_VERSION:
            raise ConfigError(
                f"--resume {run_dir}: a schema-v{env['schema_version']} run folder; this version "
                f"writes v{store.SCHEMA_VERSION} (report and compare read it; start a new run)"
            )
        config = RunConfig.from_env(env)
        if args.profile and args.profile != config.profile:
            raise ConfigError(f"--profile {args.profile} differs from the run's {config.profile}")
        if args.suite and set(args.suite) != set(config.suites):
            raise ConfigError(f"--suite differs from the run's suites {list(config.suites)}")
        for flag, given, recorded in (
            ("--repeats", args.repeats, config.repeats),
            ("--warmup", args.warmup, config.warmup),
            ("--rounds", args.rounds, config.rounds),
            ("--case-timeout", args.case_timeout, config.case_timeout_s),
            ("--devices", args.devices, config.devices),
            ("--data", args.data and str(pathlib.Path(args.data).absolute()), config.data),
        ):
            if given is not None and given != recorded:
                raise ConfigError(f"{flag} {given} differs from the run's {recorded}")
        chosen = get_suites(config.suites)
        keep = case_filter(chosen, config.profile, config.models or None, config.variants or None)
        cases = [c for s in chosen for c in s.cases(config.profile) if keep(c)]
        run_cases = {c.key(config.devices) for c in cases}  # what env.json's settings give
        if args.model or args.variant:  # this session only
            only = case_filter(chosen, config.profile, args.model, args.variant)
            keep = lambda case, run=keep: run(case) and only(case)  # noqa: E731
        check_devices(config.devices)
        values = store.check_settings(
            run_dir, env, allow_mixed=args.allow_mixed, cases=run_cases, described=_settings(config)
        )
        if args.retry_crashed:
            values = {**values, store.RETRY: True}
        runner.repair_or_refuse(run_dir)  # repaired if a run was killed; refused if damaged
        env = store.begin_session(
            run_dir, env, ["python -m bench", *argv], values, first_row=store.row_count(run_dir)
        )
        experiments = config.experiments and not args.no_experiments
        use_compile_cache(config.compile_cache)
        return _measure(
            config, env["run_id"], run_dir, env, keep, experiments, deadline=args.deadline
        )


def _settings(config: RunConfig) -> str:
    """The run settings that decide its cases, in words."""
    words = [f"profile {config.profile!r}", f"suites {list(config.suites)}"]
    words += [f"--devices {config.devices}"]
    words += [f"models {list(config.models)}"] if config.models else []
    words += [f"variants {list(config.variants)}"] if config.variants else []
    return ", ".join(words)


@contextlib.contextmanager
def _writing(run_dir: pathlib.Path):
    """A failed write to the run folder (full disk, read-only, ...) as one line; an interrupt
    carries the folder, so the message can name it."""
    try:
        yield
    except OSError as e:
        raise store.io_failure(run_dir, e) from None
    except KeyboardInterrupt as e:
        e.run_dir = run_dir
        raise


def _measure(config, run_id, run_dir, env, keep, experiments=None, *, deadline=None) -> int:
    print(
        f"run folder: {run_dir} (profile {config.profile}, {jax.device_count()} × "
        f"{jax.devices()[0].device_kind})",
        file=sys.stderr,
        flush=True,
    )
    account = TimeAccount(bench.STARTED)
    account.add("start-up (imports, checks, env.json)", time.perf_counter() - bench.STARTED)
    with runner.user_signals():
        if "calibration" not in env:  # measured once per run folder; a resume keeps the first
            print("calibrating the device ...", file=sys.stderr, flush=True)
            with account.spend("calibration"):
                env["calibration"] = calibrate(config.profile).as_dict()
            store.write_json(run_dir / "env.json", env)
        outcome = runner.run(
            config,
            run_id,
            run_dir,
            calibration=env["calibration"],
            keep=keep,
            env=env,
            experiments=experiments,
            deadline=deadline,
            account=account,
        )
        env = {**load_env(run_dir), "load_avg_finish": _load_avg()}
        store.end_session(run_dir, env=_with_time(env, account.closed()))
        began = time.perf_counter()
        path = report.render(run_dir)
        env = load_env(run_dir)  # the report's own time, apart: a re-render gives the same report
        spent = store.sessions(env)[-1]
        spent = {**spent, "report_s": round(time.perf_counter() - began, 3)}
        store.write_json(run_dir / "env.json", {**env, "sessions": [
            *store.sessions(env)[:-1], spent]})  # fmt: skip
    print(f"results in {run_dir}/ (report: {path})")
    if outcome.left:
        print(
            f"bench: {outcome.left} case(s) of the run not measured yet (this session was "
            f"narrowed, or they did not fit --budget-s): --resume {run_dir} measures them",
            file=sys.stderr,
        )
    if outcome.deferred_claims:
        print(
            f"bench: claims {', '.join(outcome.deferred_claims)}: their experiments did not "
            f"fit --budget-s: --resume {run_dir} runs them",
            file=sys.stderr,
        )
    given_up = store.given_up(env)
    crashed = [c for c in outcome.failed_claims if c in given_up]
    failed = [c for c in outcome.failed_claims if c not in given_up]
    if crashed:
        print(
            f"bench: the experiment of {', '.join(crashed)} killed the bench process "
            f"{max(given_up[c] for c in crashed)} times and is not run again (ERROR in "
            f"claims.csv): --resume {run_dir} --retry-crashed tries it again",
            file=sys.stderr,
        )
    if failed:
        print(
            f"bench: the experiment of {', '.join(failed)} failed (ERROR in "
            f"claims.csv): --resume {run_dir} runs it again",
            file=sys.stderr,
        )
    return 1 if outcome.failed_claims else 0


def _with_time(env: dict, time_s: dict) -> dict:
    """``env`` with this session's time account (``time_s``, all but the report) in its last
    session."""
    sessions = store.sessions(env)
    return {**env, "sessions": [*sessions[:-1], {**sessions[-1], "time_s": time_s}]}


def _load_avg() -> list[float] | None:
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


def check_devices(devices: int) -> int:
    """Refuse a device count the machine lacks, before any run. (Cases whose batch it does
    not divide run on one device; their rows say so.)"""
    if devices > jax.device_count():
        raise ConfigError(f"--devices {devices}: only {jax.device_count()} device(s) visible")
    return devices


def cmd_report(args, argv) -> int:
    if not args.run_dir.is_dir():
        raise ConfigError(f"{args.run_dir}: no such run folder")
    store.check_not_in_use(args.run_dir)  # (nor one that holds a symbolic link)
    try:
        print(report.render(args.run_dir))
    except SchemaError as e:
        raise ConfigError(str(e)) from None
    except OSError as e:  # a read-only folder, a full disk
        where = f" ({e.filename})" if e.filename else ""
        raise ConfigError(
            f"report {args.run_dir}: cannot write the report there: {e.strerror or e}{where}; "
            "its CSVs are untouched: render a copy of the folder somewhere writable"
        ) from None
    return 0


def cmd_compare(args, argv) -> int:
    if args.runs:
        runs = args.runs
    elif args.pytest_benchmark:
        runs = last_saves(BENCHMARK_STORAGE)
    else:
        runs = last_runs(RESULTS)
    if len(runs) != 2:
        where = BENCHMARK_STORAGE if args.pytest_benchmark and not args.runs else RESULTS
        raise ConfigError(
            f"compare needs two runs, found {len(runs)}"
            + ("" if args.runs else f" in {where}/")
            + " (name two run folders or pytest-benchmark saves)"
        )
    try:
        old, new = open_run(runs[0]), open_run(runs[1])
        options = dict(threshold=args.threshold, normalise=args.normalise)
        result = compare(old, new, allow=tuple(args.allow), **options)
        if args.remeasure:
            result = remeasure(result, **options)
    except CompareError as e:
        raise ConfigError(f"cannot compare: {e}") from None
    print(render(result, every=args.all))
    return result.exit_code


def cmd_history(args, argv) -> int:
    try:
        csv_path, png_path, df = history.write(args.results, args.out, args.suite, args.case)
    except (history.HistoryError, SchemaError) as e:
        raise ConfigError(str(e)) from None
    print(f"{df.case.nunique()} cases over {df.run_id.nunique()} runs: {csv_path}, {png_path}")
    return 0


def cmd_list(args, argv) -> int:
    registered = suites()
    for problem in plugin_errors():
        print(f"bench: warning: {problem}", file=sys.stderr)
    for name, suite in registered.items():
        print(f"{name}: {suite.description}")
        for variant, why in (suite.unavailable() if suite.unavailable else {}).items():
            print(f"    (variant {variant} is absent here: {why})")
        if args.profile:
            for case in suite.cases(check_profile(args.profile)):
                print(f"    {case.label}")
    return 0


def cmd_plan(args, argv) -> int:
    chosen = get_suites(args.suite)
    config = RunConfig.create(
        profile=check_profile(args.profile or default_profile(jax.default_backend())),
        suites=[s.name for s in chosen],
        repeats=args.repeats,
        models=args.model,
        variants=args.variant,
        experiments=not args.no_experiments,
    )
    keep = case_filter(chosen, config.profile, config.models or None, config.variants or None)
    if args.assume:
        cal, cost = plan.ASSUMED[args.assume]
        device = f"an assumed {args.assume} ({cal.matmul_flops_per_s.how})"
    else:
        print(f"calibrating {jax.devices()[0].device_kind} ...", file=sys.stderr, flush=True)
        cal, cost = calibrate(config.profile), plan.compile_cost()
        device = f"{jax.device_count()} × {jax.devices()[0].device_kind}"
    rows, total = [], 0.0
    for case in (c for s in chosen for c in s.cases(config.profile) if keep(c)):
        with planning():
            e = plan.estimate(
                case, cal, cost, repeats=config.repeats, warmup=config.warmup, rounds=config.rounds
            )
        rows.append(dict(case=e.label, compile_s=e.compile_s, call_ms=e.call_s * 1e3,
                         repeats=e.repeats, total_s=e.total_s))  # fmt: skip
        total += e.total_s
    side = plan.side_costs(chosen, config.profile, config.experiments)
    rows += [dict(case=name, total_s=seconds) for name, seconds in side]
    total += sum(seconds for _, seconds in side)
    print(report.table(pd.DataFrame(rows)))
    print(
        f"{len(rows) - len(side)} cases, estimated {total:.0f} s ({total / 60:.1f} min) in all "
        f"on {device}, cold compilation cache "
        f"(compile {cost.fixed_s:.2f} s + {cost.per_eqn_s * 1e3:.2f} ms per equation + "
        f"{cost.per_loop_s * 1e3:.0f} ms per loop; "
        f"arithmetic at {plan.ASSUMED_EFFICIENCY:.0%} of "
        f"{cal.matmul_flops_per_s.value / 1e9:.3g} GFLOP/s)"
    )
    return 0


COMMANDS = {
    "run": cmd_run,
    "report": cmd_report,
    "compare": cmd_compare,
    "history": cmd_history,
    "list": cmd_list,
    "plan": cmd_plan,
}
