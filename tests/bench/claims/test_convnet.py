"""C5's rule (bench/claims/convnet.py), fed counts that make it come out each way."""

from bench.claims.convnet import SEED_CLAIM, SEED_EXPRESSIONS, SEED_TOTAL, evaluate, judge


def test_the_seeds_written_expressions_give_its_boxed_counts_and_total():
    assert {k: evaluate(e) for k, e in SEED_EXPRESSIONS.items()} == SEED_CLAIM
    assert sum(SEED_CLAIM.values()) == SEED_TOTAL


def test_c5_passes_on_the_seeds_counts():
    assert judge(dict(SEED_CLAIM), dict(SEED_CLAIM), 1.002).verdict == "PASS"


def test_c5_a_wrong_formula_is_a_mathematical_error():
    # the model counts one more in fc1 than the seed's count, which is what its expression gives
    other = {**SEED_CLAIM, "fc1": 205_521_921}
    v = judge(other, dict(other), 1.0)
    assert v.verdict == "CORRECTED" and v.slip == "mathematical error"
    assert v.facts["total"] == sum(other.values()) and v.facts["bad_formula"] == ["fc1"]


def test_c5_a_right_formula_mis_evaluated_is_a_transcription_slip():
    # the seed boxes a number its own (right) expression does not give
    seed = {**SEED_CLAIM, "conv2": 73_865}
    v = judge(dict(SEED_CLAIM), dict(SEED_CLAIM), 1.0, seed, sum(seed.values()))
    assert v.verdict == "CORRECTED" and v.slip == "notation or transcription slip"
    # so is a total that is not the sum of the seed's layers
    v = judge(dict(SEED_CLAIM), dict(SEED_CLAIM), 1.0, dict(SEED_CLAIM), SEED_TOTAL + 10)
    assert v.verdict == "CORRECTED" and v.slip == "notation or transcription slip"
    # a wrong formula anywhere makes it a mathematical error
    other = {**SEED_CLAIM, "fc1": 205_521_921}
    v = judge(other, dict(other), 1.0, seed, sum(seed.values()))
    assert v.verdict == "CORRECTED" and v.slip == "mathematical error"


def test_c5_fails_when_the_model_is_not_the_formulas_net():
    assert judge(dict(SEED_CLAIM), {**SEED_CLAIM, "conv1": 1}, 1.0).verdict == "FAIL"
