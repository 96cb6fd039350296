"""A claim's rule is one declaration (``Rule``), and so is a claim with a wall-time half
(``wall_time_claim``): bench/claims/__init__.py."""

from bench import claims
from bench.claims import Rule, mdrnn, pixelcnn


def test_a_rule_builds_its_verdicts_and_names_its_slip_on_corrected_only():
    rule = Rule("C99", "1 + 1 summed", "the sum", "PASS iff 1 + 1 = 2")
    passed = rule.verdict("PASS", "1 + 1 = 2", "one and one make two", {"sum": 2})
    assert (passed.claim, passed.check, passed.measure) == ("C99", "1 + 1 summed", "the sum")
    assert (passed.rule, passed.slip, passed.facts) == ("PASS iff 1 + 1 = 2", "", {"sum": 2})
    assert rule.verdict("CORRECTED", "1 + 1 = 2", "two", {}).slip == "mathematical error"
    given = rule.verdict(
        "CORRECTED", "m", "s", {}, claim="C98", check="2 + 2", slip="notation or transcription slip"
    )
    assert (given.claim, given.check, given.slip) == (
        "C98",
        "2 + 2",
        "notation or transcription slip",
    )
    assert Rule("C99", "c", "m", "t", slip="").verdict("FAIL", "m", "s", {}).slip == ""


def test_a_wall_time_claim_is_stated_judged_and_drawn_from_its_one_declaration():
    stated = {c.id: c for c in claims.stated()}
    for spec in (pixelcnn.C8_TIME, pixelcnn.C9_TIME, mdrnn.C11_TIME):
        claim = stated[spec.claim]
        assert claim.rules[-1] == claims.wall_time_rule(spec) and len(claim.rules) == 2
        (derived,) = [d for d in claims.derived() if d.claims == (spec.claim,)]
        assert derived.suites == (spec.suite,) and derived.judge.__module__ == claim.module
        (figure,) = [f for f in claims.wall_time_figures() if f.claim == spec.claim]
        assert figure.specs == (spec,) and (figure.suites, figure.mode) == (
            (spec.suite,),
            spec.mode,
        )
        assert claim.measure == f"`{figure.measure}`; wall time (latency regime)"
