"""C2 and C3's rule (bench/claims/lstm.py), fed error tables that make it come out each way."""

import pandas as pd

from bench.claims.lstm import SEED_LINES, _backward_verdict

NOTE = next(line for line in SEED_LINES if line.side_note)
NOTATION = next(line for line in SEED_LINES if line.slip.startswith("notation"))
MATH_C3 = next(line for line in SEED_LINES if line.claim == "C3")


def table(bptt_f32=1e-7, bptt_f64=1e-15, written=1e-15, corrected=1e-15, claim="C2", off=()):
    """Errors of every line of ``claim``; the lines in ``off`` miss by 1.9 as written."""
    rows = [
        dict(claim=claim, equation="all", form="hand-written BPTT", dtype=dtype, max_rel_err=err)
        for dtype, err in (("float32", bptt_f32), ("float64", bptt_f64))
    ]
    for line in SEED_LINES:
        if line.claim == claim:
            as_written = 1.9 if line in off else written
            for form, err in (("as written", as_written), ("corrected", corrected)):
                rows.append(dict(claim=claim, equation=line.equation, form=form,
                                 dtype="float64", max_rel_err=err))  # fmt: skip
    return pd.DataFrame(rows)


def test_the_seeds_lines_all_right_pass():
    assert _backward_verdict("C2", table(), "sizes").verdict == "PASS"


def test_a_seed_line_off_is_corrected_with_its_kind_of_slip():
    v = _backward_verdict("C3", table(claim="C3", off=(MATH_C3,)), "sizes")
    assert v.verdict == "CORRECTED" and v.slip == "mathematical error"
    v = _backward_verdict("C2", table(off=(NOTATION,)), "sizes")
    assert v.verdict == "CORRECTED" and v.slip == "notation or transcription slip"


def test_a_wrong_side_note_is_its_own_finding_and_sets_neither_verdict_nor_slip():
    assert NOTE.slip == "mathematical error"  # the note's own kind of mistake
    alone = _backward_verdict("C2", table(off=(NOTE,)), "sizes")
    assert alone.verdict == "PASS" and alone.facts["wrong"] == {}
    assert alone.facts["wrong_notes"] == {NOTE.equation: 1.9}
    with_notation = _backward_verdict("C2", table(off=(NOTE, NOTATION)), "sizes")
    assert with_notation.verdict == "CORRECTED"
    assert with_notation.slip == "notation or transcription slip"
    assert with_notation.facts["wrong"] == {NOTATION.equation: 1.9}
    assert with_notation.facts["wrong_notes"] == {NOTE.equation: 1.9}
    assert _backward_verdict("C2", table(off=(NOTATION,)), "sizes").facts["wrong_notes"] == {}


def test_the_tanh_equation_is_judged_on_what_it_writes_and_its_note_apart():
    tanh_lines = [line for line in SEED_LINES if "tanh'" in line.equation]
    equation = next(line for line in tanh_lines if not line.side_note)
    assert equation.as_written == equation.corrected  # the equation writes 1 - tanh²
    assert NOTE in tanh_lines and NOTE.as_written != NOTE.corrected


def test_a_backward_pass_off_autodiff_fails():
    assert _backward_verdict("C2", table(bptt_f32=1e-3), "sizes").verdict == "FAIL"
    assert _backward_verdict("C2", table(corrected=1e-6), "sizes").verdict == "FAIL"
