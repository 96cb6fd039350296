"""C5's rule (bench/claims/convnet.py), fed counts that make it come out each way."""

from bench.claims.convnet import SEED_CLAIM, judge


def test_c5_passes_on_the_seeds_counts():
    assert judge(dict(SEED_CLAIM), dict(SEED_CLAIM), 1.002).verdict == "PASS"


def test_c5_corrects_the_seed_when_model_and_formula_agree_on_another_count():
    other = {**SEED_CLAIM, "fc1": 205_521_921}
    v = judge(other, dict(other), 1.0)
    assert v.verdict == "CORRECTED" and v.slip == "mathematical error"
    assert f"{sum(other.values()):,} parameters" in v.statement
    assert "differs at fc1 (seed 205,521,920, counted 205,521,921)" in v.statement


def test_c5_fails_when_the_model_is_not_the_formulas_net():
    assert judge(dict(SEED_CLAIM), {**SEED_CLAIM, "conv1": 1}, 1.0).verdict == "FAIL"
