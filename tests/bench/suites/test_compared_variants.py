"""Compared variants share everything but the thing compared.

At equal sizes, each variant's work (``work_flops`` of its traced program) is within 10% of
its suite's baseline variant, or the variant's note explains the difference op by op; and
every training workload names its batch argument, so ``--devices`` can split it.
"""

import pytest

from bench.structure import analyse
from bench.workloads import PLANNING, suites

TOLERANCE = 0.10
COMPARED = [s for s in suites().values() if s.baselines]


@pytest.mark.parametrize("suite", COMPARED, ids=[s.name for s in COMPARED])
def test_variants_do_the_baselines_work_or_say_why(suite):
    built = {}
    for case in suite.cases("smoke"):
        w = case.workload(PLANNING)  # a case that reads prepared weights gets fresh ones
        if case.mode == "train":
            assert w.batch_argnum is not None, f"{case.label}: no batch_argnum"
        work = analyse(w.fn, *w.args, while_trip_count=w.while_trip_count).work_flops
        built[case.model, case.mode, case.variant, tuple(sorted(case.sizes.items()))] = (
            work,
            w.note,
        )
    compared = 0
    for (model, mode, variant, sizes), (work, note) in built.items():
        baseline = suite.baselines.get(mode)
        if variant == baseline or (model, mode, baseline, sizes) not in built:
            continue
        compared += 1
        ratio = work / built[model, mode, baseline, sizes][0]
        if abs(ratio - 1) > TOLERANCE:
            assert note, (
                f"{suite.name} {mode} {variant} {dict(sizes)}: work ×{ratio:.2f} of "
                f"{baseline}'s, and no note says why"
            )
    assert compared, f"{suite.name}: the smoke profile compares no variant with its baseline"
