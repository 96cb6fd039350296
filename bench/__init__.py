"""seqdepth-bench: the benchmark harness (``python -m bench``)."""

import time as _time

STARTED = _time.perf_counter()
"""When the package was first imported: the start of a session's time account."""
