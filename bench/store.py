"""The run folder, read and written one way: schema, append, repair, load, validation.

(Being merged: for now this re-exports :mod:`bench.records` and :mod:`bench.analysis`.)
"""

from bench.analysis import *  # noqa: F403
from bench.analysis import SchemaError  # noqa: F401
from bench.records import *  # noqa: F403
