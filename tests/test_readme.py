"""The README's commands work as written.

Every ``make`` command it shows names a target that exists (``make -n``), every ``python -m
bench`` command it shows parses, and its first session runs as written, line by line, in a
copy of the checkout holding only the tracked files (what a clone has) with the venv that
``make bench`` made (slow: two one-minute runs)."""

import pathlib
import re
import shlex
import shutil
import subprocess
import sys

import pytest

from bench.cli import parser

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
FIRST_SESSION = "A first session, every command as written:"


def shell_blocks(text: str) -> list[list[str]]:
    """The command lines of each ```sh block: an indented line continues the one before it
    (a synopsis), a trailing ``  # ...`` comment is dropped."""
    out = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        lines: list[str] = []
        for line in block.splitlines():
            if line[:1] in " \t" and lines:
                lines[-1] += " " + line.strip()
            elif line and not line.startswith("#"):
                lines.append(line)
        out.append([line.split("  #")[0].strip() for line in lines])
    return out


COMMANDS = [line for block in shell_blocks(README) for line in block if line]


def test_the_readme_shows_commands():
    assert any(c.startswith("make bench") for c in COMMANDS)
    assert any(c.startswith(".venv/bin/python -m bench") for c in COMMANDS)


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.startswith("make ")])
def test_every_make_command_names_a_target_that_exists(command):
    # a dry run (-n) prints the recipe without running it; an interpreter named in the README
    # stands for one that has the dependencies, as the README says
    argv = [a.replace("PYTHON=python3", f"PYTHON={sys.executable}") for a in shlex.split(command)]
    done = subprocess.run(
        [*argv[:1], "-n", "--no-print-directory", *argv[1:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    "command", [c for c in COMMANDS if re.match(r"(\.venv/bin/)?python3? -m bench ", c)]
)
def test_every_bench_command_parses(command):
    if "[" in command:  # a synopsis: check the options it names exist
        names = re.findall(r"--[a-z-]+", command)
        sub = command.split()[3]
        known = {o for a in _subparser(sub)._actions for o in a.option_strings}
        assert set(names) <= known, set(names) - known
        return
    parser().parse_args(shlex.split(command)[3:])


def _subparser(name: str):
    (sub,) = [a for a in parser()._actions if hasattr(a, "choices") and a.choices]
    return sub.choices[name]


def _checkout_copy(dest: pathlib.Path) -> pathlib.Path:
    """The tracked files of this checkout, modification times kept (so make sees the venv
    as up to date), and a link to its venv."""
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    (dest / ".venv").symlink_to(ROOT / ".venv")
    return dest


@pytest.mark.slow
def test_the_first_session_runs_as_written_in_a_clean_copy(tmp_path):
    assert (ROOT / ".venv" / "bin" / "python").exists(), "run `make env` first"
    (block,) = [b for b in shell_blocks(README.split(FIRST_SESSION, 1)[1])[:1]]
    copy = _checkout_copy(tmp_path / "clone")
    for command in block:
        done = subprocess.run(
            command, shell=True, cwd=copy, capture_output=True, text=True, timeout=600
        )
        # compare: 0 (same), 1 (a case flagged) or 3 (machine moved) mean it compared; 2 would not
        allowed = (0, 1, 3) if " compare" in command else (0,)
        assert done.returncode in allowed, f"{command}\n{done.stderr[-2000:]}"
        assert "Traceback" not in done.stderr, done.stderr
    latest = copy / "results" / "latest"
    assert latest.is_symlink() and latest.resolve().name == "second"
    assert (copy / "results" / "first" / "report.md").exists()


def test_the_readmes_gate_passes_on_unchanged_code(tmp_path):
    """The README's gate, run on two pytest-benchmark saves of one commit whose whole run moved
    1.16× and whose cases moved 5% each (what unchanged code does on a shared CPU): exit 0.
    (pytest-benchmark's median threshold, which the README no longer offers as a gate, and
    the comparison's earlier per-case rule both failed it.)"""
    import numpy as np

    from bench.cli import main
    from bench.workloads import IDENTITY
    from tests.bench.test_compare import synthetic_run, write_save

    (gate,) = [c for c in COMMANDS if "bench compare --pytest-benchmark" in c]
    rng = np.random.default_rng(0)
    saves = []
    for name, drift in (("0001_old", 1.0), ("0002_new", 1.16)):
        run = synthetic_run(tmp_path, rng, drift=drift, case_noise=0.05)
        entries = [
            (dict(zip(IDENTITY, key, strict=True)), list(t)) for key, t in run.samples.items()
        ]
        saves.append(write_save(tmp_path / "storage" / "Linux" / f"{name}.json", entries))
    assert "--benchmark-compare-fail" not in " ".join(COMMANDS)
    argv = shlex.split(gate)[3:]
    assert main([*argv, *map(str, saves)]) == 0


def test_the_pandas_example_runs_as_written_on_the_first_sessions_runs(tmp_path, monkeypatch):
    from tests.bench.test_compare import same_code

    (block,) = re.findall(r"## Analysing results with pandas\n\n```python\n(.*?)```", README, re.S)
    for name in ("first", "second"):
        same_code(tmp_path / "results" / name, env={"started_utc": f"2026-12-0{len(name)}"})
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(block, "README.md", "exec"), scope)
    assert scope["ok"].groupby(scope["keys"], dropna=False).ngroups == 4  # 3 LSTM + matmul
