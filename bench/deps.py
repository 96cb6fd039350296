"""Does this interpreter have what the suite needs? One line if not (``make bench PYTHON=...``).

``python -m bench.deps`` prints nothing when every dependency is importable, else one line
naming what is missing and how to get it. It imports nothing it checks (only locates it) and
uses only the standard library, in syntax that old interpreters parse, so that it can speak
for them too.
"""

import importlib.util
import sys

MIN_PYTHON = (3, 11)
MODULES = {
    # distribution (pyproject.toml's dependencies) -> the module it provides
    "jax": "jax",
    "flax": "flax",
    "optax": "optax",
    "pandas": "pandas",
    "pytest-benchmark": "pytest_benchmark",
    "matplotlib": "matplotlib",
    "scikit-learn": "sklearn",
    "orbax-checkpoint": "orbax",
}


def problems() -> list:
    found = []
    if sys.version_info < MIN_PYTHON:
        found.append("Python >= {}.{} (this is {}.{})".format(*MIN_PYTHON, *sys.version_info[:2]))
    missing = [dist for dist, module in MODULES.items() if importlib.util.find_spec(module) is None]
    if missing:
        found.append(", ".join(missing))
    return found


def main() -> int:
    found = problems()
    if not found:
        return 0
    print(
        "{} lacks {}: install them into it (pip install -e .), or run make without "
        "PYTHON= to use a venv".format(sys.executable, " and ".join(found))
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
