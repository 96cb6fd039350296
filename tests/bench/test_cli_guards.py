"""Guard rails of the command line: help names every command, a closed pipe is no error, a run
can be named and results/latest points at the newest, a profile far too large for the device
needs an explicit flag, and env.json holds the values a run used."""

import json
import pathlib
import subprocess
import sys

import jax
import pytest

from bench import cli, plan
from bench.cli import main
from bench.workloads import get_suites


def test_the_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for command in cli.COMMANDS:
        assert f"\n    {command} " in out, command


def test_a_closed_pipe_ends_the_command_quietly(tmp_path):
    with subprocess.Popen(
        [sys.executable, "-m", "bench", "list", "--profile", "cpu"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=pathlib.Path(cli.__file__).parent.parent,
    ) as proc:
        proc.stdout.close()  # the reader goes away before the output comes, as `| head` may
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 141
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


def test_a_named_run_and_the_latest_pointer(tmp_path, capsys):
    argv = ["run", "--suite", "binary_adder", "--profile", "smoke", "--no-experiments"]
    assert main([*argv, "--out", str(tmp_path), "--name", "before-fix"]) == 0
    run_dir = tmp_path / "before-fix"
    assert (tmp_path / "latest").is_symlink()
    assert (tmp_path / "latest").resolve() == run_dir.resolve()
    assert json.loads((run_dir / "env.json").read_text())["run_id"] == "before-fix"
    capsys.readouterr()
    # a name in use is refused, and nothing is written
    assert main([*argv, "--out", str(tmp_path), "--name", "before-fix"]) == 2
    assert "exists already" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["before-fix", "latest"]
    # every command takes the pointer for the run folder
    assert main(["report", str(tmp_path / "latest")]) == 0


@pytest.mark.parametrize("name", ["latest", "../elsewhere", ".hidden", "a b", ""])
def test_a_run_name_that_is_not_a_plain_folder_name_is_refused(name, tmp_path, capsys):
    assert main(["run", "--name", name, "--out", str(tmp_path)]) == 2
    assert "a run name is letters" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_profile_far_larger_than_the_device_needs_an_explicit_flag(tmp_path, capsys):
    assert main(["run", "--profile", "full", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--profile full on cpu (suited: cpu): crude estimate" in err
    assert "pass --allow-slow to run it anyway" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_the_estimate_grows_with_the_profile_and_is_given_when_allowed():
    chosen = get_suites(None)
    smoke, cpu, full = (plan.rough_seconds(chosen, p) for p in ("smoke", "cpu", "full"))
    assert smoke < cpu < full
    known = [plan.CPU_PROFILE_S.get(s.name, plan.UNKNOWN_SUITE_S) for s in chosen]
    assert cpu == pytest.approx(sum(known))
    line = plan.refuse_oversized(chosen, "full", "cpu", allowed=True, flag="--allow-slow")
    assert line.startswith("--profile full on cpu")
    assert plan.refuse_oversized(chosen, "full", "gpu", allowed=False, flag="--allow-slow") == ""
    assert plan.refuse_oversized(chosen, "cpu", "cpu", allowed=False, flag="--allow-slow") == ""


def test_env_json_records_the_values_the_run_used(smoke_run):
    env = json.loads((smoke_run / "env.json").read_text())
    assert env["repeats"] == 2 and env["warmup"] == 1 and env["devices"] == 1
    assert env["suites"] == ["lstm"] and env["profile"] == "smoke"
    assert env["experiments"] is False
    assert len(env["load_avg_start"]) == 3 and len(env["load_avg_finish"]) == 3
    unset = {k for k, v in env.items() if v is None}
    # None only where None is the value used: no timeout, no data file, no trace, default
    # precision, a clean git tree (no diff to hash)
    allowed = {"case_timeout_s", "data", "trace_dir", "jax_default_matmul_precision"}
    assert unset <= allowed | {"git_diff_sha256"}, unset


# --- Paths, counts and the environment: refused in one line before the first write (#34) ------

FAULTS = "tests.bench.faults_suite"


@pytest.fixture
def sized(monkeypatch):
    monkeypatch.setenv("BENCH_SUITE_MODULES", FAULTS)
    yield ["run", "--suite", "faults-sized", "--profile", "smoke", "--no-experiments"]
    from tests.bench.test_faults import _forget_fault_suites

    _forget_fault_suites()


def _one_line(code, capsys, *needles) -> str:
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("bench: error: "), err
    for needle in needles:
        assert needle in err
    return err


def test_an_out_folder_too_long_for_the_file_system_is_one_line(sized, tmp_path, capsys):
    out = tmp_path / ("x" * 250) / ("y" * 250)
    out = pathlib.Path(str(out) + "/z" * 1900)  # 4,200 characters or so: over PATH_MAX
    code = main([*sized, "--out", str(out), "--name", "n"])
    _one_line(code, capsys, "--out", "File name too long")
    assert list(tmp_path.iterdir()) == []


def test_an_out_folder_that_is_a_loop_of_links_is_one_line(sized, tmp_path, capsys):
    (tmp_path / "loop").symlink_to("loop")
    _one_line(main([*sized, "--out", str(tmp_path / "loop")]), capsys, "a loop of symbolic links")


@pytest.mark.parametrize("flag", ["--repeats", "--warmup", "--rounds"])
def test_a_count_that_could_never_end_is_refused_unless_a_budget_bounds_it(
    flag, sized, tmp_path, capsys
):
    code = main([*sized, "--out", str(tmp_path), flag, str(10**12)])
    _one_line(code, capsys, f"{flag} {10**12}: more than", "--budget-s")
    assert list(tmp_path.iterdir()) == []


def test_too_few_cpu_devices_name_the_variable_the_run_had(monkeypatch):
    from bench.session import check_devices

    monkeypatch.delenv("JAX_NUM_CPU_DEVICES", raising=False)
    n = jax.device_count() + 1
    with pytest.raises(cli.ConfigError, match=f"JAX_NUM_CPU_DEVICES={n}.*is not set"):
        check_devices(n, {"JAX_NUM_CPU_DEVICES": str(n)})
    with pytest.raises(cli.ConfigError, match=f"on CPU, JAX_NUM_CPU_DEVICES={n} makes"):
        check_devices(n)


def test_xla_flags_xla_does_not_know_are_one_line_exit_2(sized, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XLA_FLAGS", "--no_such_xla_flag=1")
    code = main([*sized, "--out", str(tmp_path)])
    _one_line(code, capsys, "XLA_FLAGS='--no_such_xla_flag=1'", "no_such_xla_flag")
    assert list(tmp_path.iterdir()) == []


def test_a_backend_jax_cannot_start_is_one_line_exit_2(sized, tmp_path, monkeypatch, capsys):
    def no_backend(*args):
        raise RuntimeError("Unable to initialize backend 'nonsense': not a known backend")

    monkeypatch.setenv("JAX_PLATFORMS", "nonsense")
    monkeypatch.setattr(jax, "devices", no_backend)
    code = main([*sized, "--out", str(tmp_path)])
    _one_line(code, capsys, "JAX_PLATFORMS='nonsense'", "Unable to initialize backend")


@pytest.mark.slow
def test_jax_platforms_naming_no_backend_is_one_line_exit_2(tmp_path):
    root = pathlib.Path(__file__).resolve().parents[2]
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root), "JAX_PLATFORMS": "nonsense"}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--suite", "binary_adder", "--out", str(tmp_path)],
        cwd=root, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "JAX_PLATFORMS='nonsense'" in done.stderr
