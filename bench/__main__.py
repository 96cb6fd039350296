import os
import sys

from bench.cli import main

code = main()
if code > 128:
    # Stopped by a signal: the files are flushed and closed; skip the interpreter's shutdown,
    # where JAX's runtime threads, interrupted mid-computation, can crash the process (SIGSEGV).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
sys.exit(code)
