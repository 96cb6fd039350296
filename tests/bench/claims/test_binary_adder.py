"""C1's rule (bench/claims/binary_adder.py), fed counts that make it come out each way."""

from bench.claims.binary_adder import judge


def rows(seed_wrong, control_wrong):
    return [
        dict(weights="seed", n_bits=4, pairs="all", n_pairs=256, n_wrong=seed_wrong),
        dict(weights="row_convention_control", n_bits=4, pairs="all", n_pairs=256,
             n_wrong=control_wrong),
    ]  # fmt: skip


def test_c1_passes_when_every_sum_is_right_and_the_control_is_not():
    v = judge(rows(0, 200), exhaustive_bits=4)
    assert v.verdict == "PASS"
    assert v.facts == dict(checked=256, wrong=0, control_checked=256, control_wrong=200)


def test_c1_fails_on_a_single_wrong_sum():
    assert judge(rows(1, 200), exhaustive_bits=4).verdict == "FAIL"


def test_c1_cannot_decide_when_the_control_passes_too():
    assert judge(rows(0, 0), exhaustive_bits=4).verdict == "INCONCLUSIVE"
