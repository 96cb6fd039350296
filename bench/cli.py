"""Command line: ``python -m bench {run,plan,report,compare,history,list} ...``.

A bad argument is one line on stderr and exit status 2, before anything is written.
"""

from __future__ import annotations

import argparse
import math
import os
import pathlib
import subprocess
import sys
import time

import jax

from bench import history, lock, plan, report, runner, store, verdicts
from bench.calibration import calibrate
from bench.compare import (
    PROBLEMS,
    THRESHOLD,
    CompareError,
    compare,
    last_runs,
    last_saves,
    open_run,
    paired,
    remeasure,
    render,
)
from bench.config import RunConfig
from bench.session import LATEST, Session
from bench.sharding import maybe_initialize_distributed
from bench.store import SchemaError
from bench.timing import default_cache_dir
from bench.workloads import (
    PROFILES,
    ConfigError,
    check_profile,
    default_profile,
    get_suites,
    plugin_errors,
    suites,
)

DESCRIPTION = "seqdepth-bench: time, verify and compare the models of the CSE 891 HW3 solution."
EPILOG = """`python -m bench COMMAND --help` shows a command's options.
Exit status: 0 done; 1 compare found a regression, or a claim's experiment ended in ERROR
(run); 2 bad input (one line on stderr); 3 compare: slower cases while the whole machine moved
(re-run on a quiet machine); 130 interrupted (finished cases are kept)."""

RESULTS = pathlib.Path("results")
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


def _trace_dir(text: str) -> str:
    """A folder for the traces: refused before the first write when something else is there."""
    path = pathlib.Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a file, not a folder for the traces")
    return text


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

    for add in (_run_command, _report_command, _compare_command, _history_command,
                _list_command, _plan_command):  # fmt: skip
        add(sub)
    return p


def _run_command(sub) -> None:
    run = sub.add_parser("run", help="measure suites into a new run folder")
    for add in (_run_what, _run_how, _run_where, _run_resume):
        add(run)


def _run_what(run) -> None:
    run = run.add_argument_group("what to measure")
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
        "--no-experiments",
        action="store_true",
        help="time the cases only; skip the claim experiments",
    )


def _run_how(run) -> None:
    run = run.add_argument_group("how to measure")
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
        type=_trace_dir,
        metavar="DIR",
        help="write a jax.profiler trace of each measured case's timed calls under DIR "
        "(one folder per case; open in Perfetto or XProf)",
    )


def _run_where(run) -> None:
    run = run.add_argument_group("where, and within which limits")
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


def _run_resume(run) -> None:
    run = run.add_argument_group("continuing a run")
    run.add_argument(
        "--resume",
        type=pathlib.Path,
        metavar="RUN_DIR",
        help="measure only the cases missing from an existing run folder",
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


def _report_command(sub) -> None:
    report = sub.add_parser("report", help="re-render report.md (and plots) of a run folder")
    report.add_argument(
        "run_dir", type=pathlib.Path, help="the run folder; report.md is written into it"
    )


def _compare_command(sub) -> None:
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
    cmp.add_argument(
        "--paired",
        metavar="OLD_CHECKOUT",
        help="time every case of both runs again, the old run's code from OLD_CHECKOUT (a "
        "checkout of its commit, e.g. `git worktree add /tmp/old SHA`) and the new run's "
        "from this checkout, in alternating back-to-back visits, and decide each case on "
        "those paired rounds: load on a shared machine weighs on both sides alike, so a "
        "slower case exits 1 whatever the machine did",
    )


def _history_command(sub) -> None:
    hist = sub.add_parser(
        "history",
        help="one case or suite across every run folder: history.csv and history.png",
        description="Reads every run folder under RESULTS and writes history.csv (one row per "
        "case and run) and history.png: each run's median time against its commit (short SHA) "
        "and start date, with the run's own noise band (IQR of its per-round medians, else of "
        "its samples).",
    )
    hist.add_argument(
        "results", nargs="?", type=pathlib.Path, default=RESULTS, metavar="RESULTS",
        help="the folder of run folders (default: results/)",
    )  # fmt: skip
    hist.add_argument("--suite", action="append", metavar="NAME", help="only this suite")
    hist.add_argument("--case", metavar="TEXT", help="only cases whose label contains TEXT")
    hist.add_argument(
        "--out", type=pathlib.Path, help="folder for history.csv/.png (default: RESULTS)"
    )


def _list_command(sub) -> None:
    lst = sub.add_parser("list", help="list suites, or the cases of a profile")
    lst.add_argument(
        "--profile", metavar="|".join(PROFILES), help="list this profile's cases, not the suites"
    )


def _plan_command(sub) -> None:
    planner = sub.add_parser(
        "plan", help="estimate each case's time and the total, before running (builds, traces)"
    )
    planner.add_argument(
        "--profile", metavar="|".join(PROFILES), help="as `run --profile` (default: by device)"
    )
    planner.add_argument("--suite", action="append", metavar="NAME", help="as `run --suite`")
    planner.add_argument("--model", action="append", metavar="NAME", help="as `run --model`")
    planner.add_argument("--variant", action="append", metavar="NAME", help="as `run --variant`")
    planner.add_argument(
        "--repeats", type=_positive_int, help="as `run --repeats` (a floor: fast calls get more)"
    )
    planner.add_argument(
        "--no-experiments", action="store_true", help="leave out the claims' experiments"
    )
    planner.add_argument(
        "--assume",
        choices=sorted(plan.ASSUMED),
        help="plan for another device, with stated constants instead of calibrating this one",
    )


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
    # From here on a Ctrl-C is the run's (runner.user_signals), even one a library swallows
    # while the run starts up, or one that comes back wrapped in a runtime error.
    with runner.user_signals():
        return _run(args, argv)


def _run(args, argv) -> int:
    # Joining a multi-process cluster must come before anything touches a device, so it is
    # the first thing a run does (the imports above create no arrays).
    maybe_initialize_distributed()
    check_jax()
    check_counts(args)
    deadline = None if args.budget_s is None else time.monotonic() + args.budget_s
    if args.resume is not None:
        return _resume(args, argv, deadline)
    for flag in ("--allow-mixed", "--retry-crashed"):
        if getattr(args, flag[2:].replace("-", "_")):
            raise ConfigError(f"{flag} is for --resume")
    config = _config(
        args,
        warmup=args.warmup,
        rounds=args.rounds,
        case_timeout_s=args.case_timeout,
        devices=args.devices,
        data=_absolute(args.data),
        compile_cache=None if args.no_compile_cache else default_cache_dir(),
        trace_dir=_absolute(args.trace),
    )
    options = dict(out=args.out, name=args.name, allow_slow=args.allow_slow, deadline=deadline)
    with Session.new(config, argv=argv, **options) as session:
        return session.run()


JAX_ENV = ("JAX_PLATFORMS", "JAX_PLATFORM_NAME", "XLA_FLAGS")


def check_jax() -> None:
    """Refuse, in one line and before anything is written, an environment JAX cannot start in:
    ``XLA_FLAGS`` that XLA does not know (XLA would end the process itself, exit 1), or a
    backend that ``JAX_PLATFORMS`` names and this machine lacks."""
    flags = os.environ.get("XLA_FLAGS", "").strip()
    if flags:
        _check_xla_flags(flags)
    try:
        jax.devices()
    except RuntimeError as e:
        named = [f"{k}={os.environ[k]!r}" for k in JAX_ENV if os.environ.get(k)]
        raise ConfigError(
            f"JAX cannot start a backend ({', '.join(named) or 'no JAX_PLATFORMS set'}): "
            + runner.first_line(e).split(": ", 1)[-1]
        ) from None


def _check_xla_flags(flags: str) -> None:
    """XLA reads ``XLA_FLAGS`` as its first backend starts, and ends the process on a flag it
    does not know: tried first in a child process (a few seconds, only when it is set)."""
    code = "import jax; jax.devices('cpu')"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    try:
        child = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
        )
    except (OSError, subprocess.TimeoutExpired):
        return  # cannot tell here: the run will
    said = [ln.split("] ", 1)[-1] for ln in child.stderr.splitlines() if "XLA_FLAGS" in ln]
    if child.returncode != 0 and said:
        raise ConfigError(f"XLA_FLAGS={flags!r}: {said[-1]}")


COUNT_LIMITS = {"repeats": 10_000, "warmup": 1_000, "rounds": 1_000}
"""Per case, without ``--budget-s``: more would take hours on any case worth timing (a count
of 10^12 never ends)."""


def check_counts(args) -> None:
    """Refuse a repeat, warm-up or round count that could not end, unless ``--budget-s`` bounds
    the session (a case whose estimate does not fit it is not started)."""
    if args.budget_s is not None:
        return
    for name, limit in COUNT_LIMITS.items():
        value = getattr(args, name)
        if value is not None and value > limit:
            hint = f"; `python -m bench plan --{name} {value}` estimates it" * (name == "repeats")
            raise ConfigError(
                f"--{name} {value}: more than {limit} per case; pass --budget-s to bound the "
                f"session{hint}"
            )


def _resume(args, argv, deadline) -> int:
    """``run --resume RUN_DIR``: the run's own settings continue it (:meth:`Session.resume`);
    flags that only a new run takes are refused here."""
    if args.name or args.allow_slow:
        raise ConfigError("--name and --allow-slow are for a new run, not --resume")
    if args.trace or args.no_compile_cache:
        raise ConfigError(
            "--trace and --no-compile-cache are a run's settings: a resume keeps the run's"
        )
    asked = {
        "--profile": args.profile,
        "--suite": args.suite,
        "--repeats": args.repeats,
        "--warmup": args.warmup,
        "--rounds": args.rounds,
        "--case-timeout": args.case_timeout,
        "--devices": args.devices,
        "--data": _absolute(args.data),
    }
    with Session.resume(
        args.resume,
        argv=argv,
        asked=asked,
        models=args.model,
        variants=args.variant,
        experiments=not args.no_experiments,
        allow_mixed=args.allow_mixed,
        retry_crashed=args.retry_crashed,
        deadline=deadline,
    ) as session:
        return session.run()


def _config(args, **options) -> RunConfig:
    """A new run's configuration from the flags ``run`` and ``plan`` share, and ``options``."""
    return RunConfig.create(
        profile=check_profile(args.profile or default_profile(jax.default_backend())),
        suites=[s.name for s in get_suites(args.suite)],
        repeats=args.repeats,
        models=args.model,
        variants=args.variant,
        experiments=not args.no_experiments,
        **options,
    )


def _absolute(path: str | None) -> str | None:
    return str(pathlib.Path(path).absolute()) if path else None


def cmd_report(args, argv) -> int:
    if not args.run_dir.is_dir():
        raise ConfigError(f"{args.run_dir}: no such run folder")
    lock.check_not_in_use(args.run_dir)  # (nor one that holds a symbolic link)
    try:
        print(report.render(verdicts.judge_run(args.run_dir)))
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
        left_out: list[str] = []
        runs = last_runs(RESULTS, left_out=left_out)
        for line in left_out:
            print(f"bench: warning: {line}", file=sys.stderr)
    if len(runs) != 2:
        where = BENCHMARK_STORAGE if args.pytest_benchmark and not args.runs else RESULTS
        raise ConfigError(
            f"compare needs two runs, found {len(runs)}"
            + ("" if args.runs else f" in {where}/")
            + " (name two run folders or pytest-benchmark saves)"
        )
    try:
        for run in runs:
            if run.is_dir():  # (a run still writing has rows to come, maybe one half written)
                lock.check_not_in_use(run, "compare it when that run finishes", writing=False)
        old, new = open_run(runs[0]), open_run(runs[1])
        options = dict(threshold=args.threshold, normalise=args.normalise)
        result = compare(old, new, allow=tuple(args.allow), **options)
        if args.remeasure:
            result = remeasure(result, **options)
        if args.paired is not None:
            result = paired(result, args.paired)
    except (CompareError, store.RunFolderError) as e:
        raise ConfigError(f"cannot compare: {e}") from None
    print(render(result, every=args.all))
    return result.exit_code


def cmd_history(args, argv) -> int:
    left_out: list[str] = []
    try:
        csv_path, png_path, df = history.write(
            args.results, args.out, args.suite, args.case, left_out=left_out
        )
    except (history.HistoryError, SchemaError) as e:
        raise ConfigError(str(e)) from None
    finally:
        for line in left_out:
            print(f"bench: warning: {line}", file=sys.stderr)
    print(f"{df.case.nunique()} cases over {df.run_id.nunique()} runs: {csv_path}, {png_path}")
    return 0


def cmd_list(args, argv) -> int:
    profile = check_profile(args.profile) if args.profile else None  # before any output
    registered = suites()
    for problem in plugin_errors():
        print(f"bench: warning: {problem}", file=sys.stderr)
    for name, suite in registered.items():
        print(f"{name}: {suite.description}")
        for variant, why in (suite.unavailable() if suite.unavailable else {}).items():
            print(f"    (variant {variant} is absent here: {why})")
        if profile:
            for case in suite.cases(profile):
                print(f"    {case.label}")
    return 0


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def cmd_plan(args, argv) -> int:
    if not args.assume:
        check_jax()
    config = _config(args)
    if args.assume:
        cal, cost = plan.ASSUMED[args.assume]
        device = f"an assumed {args.assume} ({cal.matmul_flops_per_s.how})"
    else:
        print(f"calibrating {jax.devices()[0].device_kind} ...", file=sys.stderr, flush=True)
        cal, cost = calibrate(config.profile), plan.compile_cost()
        device = f"{jax.device_count()} × {jax.devices()[0].device_kind}"
    print(plan.render(config, cal, cost, device, log=_progress))
    return 0


COMMANDS = {
    "run": cmd_run,
    "report": cmd_report,
    "compare": cmd_compare,
    "history": cmd_history,
    "list": cmd_list,
    "plan": cmd_plan,
}
