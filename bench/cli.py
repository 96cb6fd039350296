"""Command line: ``python -m bench {run,report,compare,list} ...``.

A bad argument is one line on stderr and exit status 2, before anything is written.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import pathlib
import sys

import jax
import pandas as pd

from bench import plan, records, report, runner
from bench.analysis import SchemaError, compare, load, load_env
from bench.calibration import calibrate
from bench.config import RunConfig
from bench.data import DataError, load_mnist_npz
from bench.sharding import maybe_initialize_distributed, process_suffix
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


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {value}")
    return value


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m bench", description=__doc__.splitlines()[0])
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
        "--repeats",
        type=_positive_int,
        help="timed repeats per case (default by profile: smoke 2, cpu 5, full 10)",
    )
    run.add_argument("--warmup", type=_positive_int, help="untimed calls before timing (default 1)")
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
        "$XDG_CACHE_HOME or ~/.cache /seqdepth-bench/jax; each row says whether it hit)",
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

    report = sub.add_parser("report", help="re-render report.md (and plots) of a run folder")
    report.add_argument("run_dir", type=pathlib.Path)

    cmp = sub.add_parser("compare", help="compare two runs' median times; exit 1 on regression")
    cmp.add_argument(
        "runs",
        nargs="*",
        type=pathlib.Path,
        metavar="RUN",
        help="old and new run (run folder or pytest-benchmark JSON); default: "
        f"the last two saved in {BENCHMARK_STORAGE}/",
    )
    cmp.add_argument(
        "--threshold",
        type=float,
        default=0.10,
        help="fail when a case's median grows by more than this fraction (default 0.10)",
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
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parser().parse_args(argv)
        return COMMANDS[args.command](args, argv)
    except ConfigError as e:
        print(f"bench: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        print(
            "bench: interrupted; finished cases are saved (resume with --resume RUN_DIR)",
            file=sys.stderr,
            flush=True,
        )
        return 128 + getattr(e, "signum", 2)


def cmd_run(args, argv) -> int:
    # Joining a multi-process cluster must come before anything touches a device, so it is
    # the first thing a run does (the imports above create no arrays).
    maybe_initialize_distributed()
    if args.resume is not None:
        return _resume(args, argv)
    if args.allow_mixed:
        raise ConfigError("--allow-mixed is for --resume")
    chosen = get_suites(args.suite)
    config = RunConfig.create(
        profile=check_profile(args.profile or default_profile(jax.default_backend())),
        suites=[s.name for s in chosen],
        repeats=args.repeats,
        warmup=args.warmup,
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
    run_id = records.new_run_id() + process_suffix()
    run_dir = records.create_run_dir(args.out, run_id)
    with _writing(run_dir), records.RunLock(run_dir):
        env = records.environment(run_id, config, ["python -m bench", *argv])
        records.write_json(run_dir / "env.json", env)
        return _measure(config, run_id, run_dir, env, keep)


def _resume(args, argv) -> int:
    """``run --resume RUN_DIR``: the run's own settings continue it. Flags that would change
    how it measures are refused; ``--model`` / ``--variant`` / ``--no-experiments`` narrow
    this session only. Everything is checked under the folder's lock, before any write."""
    run_dir = args.resume
    if not (run_dir / "env.json").is_file():
        raise ConfigError(f"--resume {run_dir}: not a run folder (no env.json)")
    with _writing(run_dir), records.RunLock(run_dir):
        try:
            env = load_env(run_dir)
        except SchemaError as e:
            raise ConfigError(str(e)) from None
        config = RunConfig.from_env(env)
        if args.profile and args.profile != config.profile:
            raise ConfigError(f"--profile {args.profile} differs from the run's {config.profile}")
        if args.suite and set(args.suite) != set(config.suites):
            raise ConfigError(f"--suite differs from the run's suites {list(config.suites)}")
        for flag, given, recorded in (
            ("--repeats", args.repeats, config.repeats),
            ("--warmup", args.warmup, config.warmup),
            ("--case-timeout", args.case_timeout, config.case_timeout_s),
            ("--devices", args.devices, config.devices),
            ("--data", args.data and str(pathlib.Path(args.data).absolute()), config.data),
        ):
            if given is not None and given != recorded:
                raise ConfigError(f"{flag} {given} differs from the run's {recorded}")
        chosen = get_suites(config.suites)
        keep = case_filter(chosen, config.profile, config.models or None, config.variants or None)
        if args.model or args.variant:  # this session only
            only = case_filter(chosen, config.profile, args.model, args.variant)
            keep = lambda case, run=keep: run(case) and only(case)  # noqa: E731
        check_devices(config.devices)
        values = records.check_settings(run_dir, env, allow_mixed=args.allow_mixed)
        runner.repair_or_refuse(run_dir)  # repaired if a run was killed; refused if damaged
        env = records.begin_session(
            run_dir, env, ["python -m bench", *argv], values, first_row=records.row_count(run_dir)
        )
        experiments = config.experiments and not args.no_experiments
        use_compile_cache(config.compile_cache)
        return _measure(config, env["run_id"], run_dir, env, keep, experiments=experiments)


@contextlib.contextmanager
def _writing(run_dir: pathlib.Path):
    """A failed write to the run folder (full disk, read-only, ...) as one line."""
    try:
        yield
    except OSError as e:
        raise records.io_failure(run_dir, e) from None


def _measure(config, run_id, run_dir, env, keep, experiments=None) -> int:
    print(
        f"run folder: {run_dir} (profile {config.profile}, {jax.device_count()} × "
        f"{jax.devices()[0].device_kind})",
        file=sys.stderr,
        flush=True,
    )
    with runner.user_signals():
        env = load_env(run_dir)
        if "calibration" not in env:  # measured once per run folder; a resume keeps the first
            print("calibrating the device ...", file=sys.stderr, flush=True)
            env["calibration"] = calibrate(config.profile).as_dict()
            records.write_json(run_dir / "env.json", env)
        outcome = runner.run(
            config,
            run_id,
            run_dir,
            calibration=env["calibration"],
            keep=keep,
            env=env,
            experiments=experiments,
        )
        records.end_session(run_dir, env=load_env(run_dir))
        path = report.render(run_dir)
    print(f"results in {run_dir}/ (report: {path})")
    if outcome.left:
        print(
            f"bench: {outcome.left} case(s) of the run not measured yet (this session was "
            f"narrowed): --resume {run_dir} measures them",
            file=sys.stderr,
        )
    if outcome.failed_claims:
        print(
            f"bench: the experiment of {', '.join(outcome.failed_claims)} failed (ERROR in "
            f"claims.csv): --resume {run_dir} runs it again",
            file=sys.stderr,
        )
        return 1
    return 0


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
    records.check_not_in_use(args.run_dir)
    try:
        print(report.render(args.run_dir))
    except SchemaError as e:
        raise ConfigError(str(e)) from None
    return 0


def cmd_compare(args, argv) -> int:
    runs = args.runs or sorted(BENCHMARK_STORAGE.glob("*/*.json"))[-2:]
    if len(runs) != 2:
        raise ConfigError(
            f"compare needs two runs, found {len(runs)} (run `make bench-pytest` "
            "twice, or name two run folders)"
        )
    try:
        old, new = load(runs[0]), load(runs[1])
    except SchemaError as e:
        raise ConfigError(str(e)) from None
    result = compare(old, new)
    if result.empty:
        raise ConfigError(f"{runs[0]} and {runs[1]} have no case in common")
    print(f"old: {runs[0]}\nnew: {runs[1]}\n")
    print(report.table(result))
    worse = result[result.ratio > 1 + args.threshold]
    if not worse.empty:
        print(f"{len(worse)} case(s) slower by more than {args.threshold:.0%} (median)")
        return 1
    print(f"no case slower by more than {args.threshold:.0%} (median)")
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
            e = plan.estimate(case, cal, cost, repeats=config.repeats, warmup=config.warmup)
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
    "list": cmd_list,
    "plan": cmd_plan,
}
