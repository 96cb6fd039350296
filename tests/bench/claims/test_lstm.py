"""C2 and C3's rule (bench/claims/lstm.py), fed error tables that make it come out each way."""

import pandas as pd

from bench.claims.lstm import SEED_LINES, _backward_verdict


def table(bptt_f32=1e-7, bptt_f64=1e-15, written=1e-15, corrected=1e-15, claim="C2"):
    rows = [
        dict(claim=claim, equation="all", form="hand-written BPTT", dtype=dtype, max_rel_err=err)
        for dtype, err in (("float32", bptt_f32), ("float64", bptt_f64))
    ]
    for line in SEED_LINES:
        if line.claim == claim:
            for form, err in (("as written", written), ("corrected", corrected)):
                rows.append(dict(claim=claim, equation=line.equation, form=form,
                                 dtype="float64", max_rel_err=err))  # fmt: skip
    return pd.DataFrame(rows)


def test_the_seeds_lines_all_right_pass():
    assert _backward_verdict("C2", table(), "sizes").verdict == "PASS"


def test_a_seed_line_off_is_corrected_with_its_kind_of_slip():
    v = _backward_verdict("C3", table(claim="C3", written=1.9), "sizes")
    assert v.verdict == "CORRECTED" and v.slip == "mathematical error"
    assert "(mathematical error)" in v.statement


def test_a_backward_pass_off_autodiff_fails():
    assert _backward_verdict("C2", table(bptt_f32=1e-3), "sizes").verdict == "FAIL"
    assert _backward_verdict("C2", table(corrected=1e-6), "sizes").verdict == "FAIL"
