"""docs/claims.md carries the claims' texts and rules as the code states them."""

import dataclasses

from bench import claims, report
from bench.claims import doc


def test_the_generated_parts_of_docs_claims_md_are_up_to_date():
    text = doc.DOC.read_text()
    assert doc.render(text) == text, "run: python -m bench.claims.doc"


def test_the_document_has_the_table_and_every_claims_rules():
    keys = doc.keys(doc.DOC.read_text())
    assert keys.count("table") == 1 and "wall-time rule" in keys
    in_blocks = [c for k in keys if k.startswith("rules ") for c in k[6:].split(", ")]
    assert sorted(in_blocks, key=claims.claim_number) == [c.id for c in claims.stated()]


def test_every_judged_claim_is_stated_once_with_its_rules():
    judged = {c for e in claims.experiments() for c in e.claims}
    judged |= {c for d in claims.derived() for c in d.claims}
    stated = {c.id: c for c in claims.stated()}
    assert judged == set(stated) >= {f"C{n}" for n in range(1, 14)}  # the seed's, and C13
    assert all(c.words and c.rules for c in stated.values())


def test_a_new_claim_gets_its_rules_paragraph_at_the_end_of_the_rules():
    text = doc.DOC.read_text()
    new = claims.Claim("C99", "§0", "one and one make two", "arithmetic", "bench.claims.toy",
                       ("PASS iff 1 + 1 = 2",))  # fmt: skip
    fresh = doc.render(text, [*claims.stated(), new])
    assert doc.keys(fresh)[-2:] == ["rules C99", "wall-time rule"]
    assert "**C99.** One and one make two (`bench/claims/toy.py`)." in fresh
    assert "| C99 | §0 | one and one make two |" in fresh
    assert doc.render(fresh, [*claims.stated(), new]) == fresh  # placed once, then kept


def test_a_change_in_the_code_shows_as_a_stale_document():
    text = doc.DOC.read_text()
    changed = [
        dataclasses.replace(c, words="something else") if c.id == "C7" else c
        for c in claims.stated()
    ]
    fresh = doc.render(text, changed)
    assert fresh != text and "| C7 | §4-1a | something else |" in fresh


def test_the_report_reads_the_claims_words_from_the_code():
    texts = report.claim_texts()
    assert texts == {c.id: c.words for c in claims.stated()}
    assert texts["C5"].startswith("the VGG-style net has 207,507,816 parameters")
