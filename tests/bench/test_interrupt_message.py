"""After Ctrl-C, the message names the run folder to resume (not a placeholder)."""

from bench import cli
from bench.session import Session
from tests.bench.helpers import only_run


def test_an_interrupted_run_names_its_folder_in_the_resume_hint(tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Session, "run", interrupted)
    argv = ["run", "--suite", "binary_adder", "--profile", "smoke", "--out", str(tmp_path)]
    assert cli.main([*argv, "--no-experiments"]) == 130
    err = capsys.readouterr().err
    assert f"(resume with --resume {only_run(tmp_path)})" in err and "RUN_DIR" not in err


def test_an_interrupt_before_a_run_folder_exists_names_none(monkeypatch, capsys):
    def interrupted(args, argv):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, "list", interrupted)
    assert cli.main(["list"]) == 130
    assert capsys.readouterr().err == "bench: interrupted\n"
