"""seqdepth-bench: the benchmark harness (``python -m bench``)."""

import time as _time

STARTED = _time.perf_counter()
"""When the package was first imported: the start of a session's time account."""

SIGNALLED: list[int] = []
"""Signals that stopped ``python -m bench`` before its own handlers were in place (see
``bench/__main__.py``): a Ctrl-C that a library swallowed while JAX was imported still stops the
run (``bench.runner.check_stop``)."""
