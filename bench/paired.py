"""Paired re-timing (``compare --paired``): each case's old and new program timed again, in
visits that alternate, so that whatever else ran on the machine weighs on both alike.

Two runs of the same code on a shared machine differ case by case by what ran beside each case
(on the 2-core CPU at load 2-7: a typical case moved 0.8-1.3×, single cases 3-11×, a robust
SD of 0.5 in log ratio, #35), so no rule over the two runs' own samples can tell a 1.5×
slowdown of one case from that noise. Here the programs are built again from two checkouts,
the old run's code (a checkout of its commit, ``git worktree add``) and the new run's (this
one), each in a worker process of its own whose ``bench`` is that checkout's, and every case
is visited old, new (or new, old: the order drawn per visit, seeded) back to back in
:data:`ROUNDS` rounds, each visit an untimed call then about :data:`VISIT_S` of timed calls
(the same count on both sides). A round's ratio is the quickest new call over the quickest old
call of its two visits, taken moments apart; :func:`bench.compare.paired` judges the rounds'
ratios.

The worker (:func:`worker`) is this file run by path in the child (``runpy``), so an old
checkout needs no paired code of its own: it imports that checkout's suites, cases and
``bench.timing.prepare`` (build, compile, warm up: the runner's protocol)."""

from __future__ import annotations

import json
import math
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np

ROUNDS = 9
"""Paired rounds per case: the interval of the median ratio is taken over them."""
VISIT_S = 0.03
"""A visit times calls for about this long, from the faster side's quickest warm call ..."""
MIN_CALLS, MAX_CALLS = 10, 200
"""... and at least / at most this many calls."""


class PairedError(RuntimeError):
    """A worker that could not start, build a case or answer (its stderr's last line)."""


class Worker:
    """One checkout's side: a child process that builds the cases from that checkout's code
    (with ``run_dir``'s prepared files, such as trained weights) and times visits on demand."""

    def __init__(self, checkout: pathlib.Path, run_dir: pathlib.Path, profile: str, keys):
        checkout = pathlib.Path(checkout).resolve()
        here = str(pathlib.Path(__file__).resolve().parent.parent)
        others = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        path = [str(checkout), *(p for p in others if os.path.abspath(p) != here)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
        code = f"import runpy; runpy.run_path({str(pathlib.Path(__file__).resolve())!r}, " \
               "run_name='__main__')"  # fmt: skip
        self.checkout = checkout
        self.log = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], cwd=checkout, env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
        )  # fmt: skip
        self._send({"profile": profile, "run_dir": str(run_dir), "keys": [list(k) for k in keys]})

    def _send(self, msg: dict) -> None:
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()

    def _receive(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            self.log.seek(0)
            said = [ln for ln in self.log.read().splitlines() if ln.strip()]
            raise PairedError(
                f"the worker for {self.checkout} ended (status {self.proc.returncode}): "
                + (said[-1] if said else "no message")
            )
        return json.loads(line)

    def ready(self) -> list:
        """Per case, its first call's seconds, or the error that kept it from being built."""
        return self._receive()["ready"]

    def visit(self, i: int, calls: int) -> list[float]:
        self._send({"visit": i, "calls": calls})
        return self._receive()["samples"]

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self._send({"stop": True})
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.log):
            try:
                stream.close()
            except OSError:  # (a pipe the child closed first)
                pass


def time_paired(old, new, keys, *, rounds: int = ROUNDS, seed: int = 0):
    """``old`` and ``new``: ``(checkout, run_dir, profile)``. Returns ``(timed, errors)``:
    per case key its old and new visits' samples, one list per round each
    (``(old_rounds, new_rounds)``), and per case that either side could not build, why."""
    keys = list(keys)
    workers = [Worker(*side, keys) for side in (old, new)]  # they build and compile together
    try:
        firsts = [w.ready() for w in workers]
        errors, usable = {}, []
        for i, key in enumerate(keys):
            why = [f for f in (firsts[0][i], firsts[1][i]) if isinstance(f, str)]
            if why:
                errors[key] = why[0]
            else:
                quick = min(firsts[0][i], firsts[1][i])
                usable.append((i, max(MIN_CALLS, min(MAX_CALLS, math.ceil(VISIT_S / quick)))))
        timed = {keys[i]: ([], []) for i, _ in usable}
        rng = np.random.default_rng(seed)
        for _ in range(rounds):
            for j in rng.permutation(len(usable)):
                i, calls = usable[j]
                first = int(rng.integers(2))
                for side in (first, 1 - first):
                    timed[keys[i]][side].append(workers[side].visit(i, calls))
        return timed, errors
    finally:
        for w in workers:
            w.close()


def worker() -> None:
    """The child's loop: build the cases asked (this checkout's code), then time visits."""
    reply = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything the code prints goes to stderr; stdout is the protocol's

    def answer(msg: dict) -> None:
        reply.write(json.dumps(msg) + "\n")
        reply.flush()

    import jax

    from bench.timing import prepare
    from bench.workloads import BuildContext, suites

    asked = json.loads(sys.stdin.readline())
    registered, context = suites(), BuildContext(run_dir=pathlib.Path(asked["run_dir"]))
    ready, firsts = [], []
    for key in asked["keys"]:
        suite = registered.get(key[0])
        found = [
            c for c in (suite.cases(asked["profile"]) if suite else []) if list(c.key(1)) == key
        ]
        try:
            if not found:
                raise LookupError("not a case of this checkout")
            w = found[0].workload(context)
            r = prepare(w.fn, w.args)
            ready.append(r)
            quick = []
            for _ in range(5):  # the quickest of a few warm calls: what a visit's count is for
                t0 = time.perf_counter()
                jax.block_until_ready(r.call())
                quick.append(time.perf_counter() - t0)
            firsts.append(min(quick))
        except Exception as e:  # the case, not the worker: the other cases go on
            ready.append(None)
            firsts.append(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    answer({"ready": firsts})
    for line in sys.stdin:
        msg = json.loads(line)
        if "visit" not in msg:
            break
        call = ready[msg["visit"]].call
        jax.block_until_ready(call())  # the switch to this program, untimed
        samples = []
        for _ in range(msg["calls"]):
            t0 = time.perf_counter()
            jax.block_until_ready(call())
            samples.append(time.perf_counter() - t0)
        answer({"samples": samples})


if __name__ == "__main__":
    worker()
