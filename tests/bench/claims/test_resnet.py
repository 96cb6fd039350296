"""C6 (bench/claims/resnet.py): the rule that judges the residual-block claim."""

from bench.claims.resnet import judge


def _grad_rows(image_norms):
    """Synthetic sweep rows: image_norms[variant] = norms at depths (2, 8)."""
    rows = []
    for variant, norms in image_norms.items():
        for n, g in zip((2, 8), norms, strict=True):
            base = dict(variant=variant, depth=n, seed=0)
            rows.append(dict(base, tap="image", block="", grad_norm=g))
            rows.append(dict(base, tap="block", block=0, grad_norm=g))
            rows.append(dict(base, tap="head", block=n, grad_norm=1.0))
    return rows


E = dict(depths=(2, 8), seeds=1, train_depth=8, steps=10, lrs=(0.1,))


def test_c6_rule_passes_fails_or_corrects_from_the_numbers():
    stable = _grad_rows({"post-act": [1, 50], "pre-act": [1, 3], "plain": [1, 1e4]})
    unstable = _grad_rows({"post-act": [1, 2], "pre-act": [1, 30], "plain": [1, 1e4]})
    easier = {"post-act": 1.0, "pre-act": 0.5, "plain": 2.0}
    harder = {"post-act": 0.1, "pre-act": 0.5, "plain": 2.0}
    assert judge(stable, easier, E).verdict == "PASS"
    assert judge(unstable, easier, E).verdict == "FAIL"
    row = judge(stable, harder, E)
    assert row.verdict == "CORRECTED"
    assert "post-act (0.1)" in row.statement and "plain's grows 1e+04×" in row.statement
    assert "spread 3×" in row.measured and "spread 50×" in row.measured
