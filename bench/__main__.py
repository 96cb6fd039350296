import os
import signal
import sys

import bench

_importing = True


def _stop(signum, frame):
    # Kept, so that a KeyboardInterrupt that lands where it is ignored (a garbage collector's
    # callback: "Exception ignored in ...") still stops the run (bench.runner.check_stop); not
    # raised while JAX is imported, where it would come out as an ImportError.
    bench.SIGNALLED.append(signum)
    if not _importing:
        raise KeyboardInterrupt


if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, _stop)
from bench.cli import main  # noqa: E402

_importing = False
if bench.SIGNALLED:  # stopped while the program started: nothing was done
    print("bench: interrupted", file=sys.stderr, flush=True)
    os._exit(130)
code = main()
if code > 128:
    # Stopped by a signal: the files are flushed and closed; skip the interpreter's shutdown,
    # where JAX's runtime threads, interrupted mid-computation, can crash the process (SIGSEGV).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
sys.exit(code)
