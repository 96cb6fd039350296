"""``docs/claims.md``'s generated parts, made from the claims' texts in code (:class:`Claim`).

The table of claims and each claim's rule, as its verdicts state it, live once, in the modules
of :mod:`bench.claims`; the document carries them between ``<!-- generated: KEY ... -->`` and
``<!-- end generated -->`` markers, around the prose that says how each claim is measured and
why its rule is so. ``python -m bench.claims.doc`` rewrites the generated parts; with
``--check`` it only says whether they are up to date (a test runs the check).
"""

from __future__ import annotations

import pathlib
import re
import sys

from bench.claims import Claim, stated, wall_time_rule

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "claims.md"
BLOCK = re.compile(
    r"(?P<begin><!-- generated: (?P<key>[^(>]+?) \(python -m bench\.claims\.doc[^>]*-->\n)"
    r"(?P<body>.*?)(?P<end><!-- end generated -->)",
    re.DOTALL,
)
BEGIN = "<!-- generated: {key} (python -m bench.claims.doc: edit the code, not this) -->\n"


def table(claims: list[Claim]) -> str:
    """The table of claims: where the seed makes each, in our words, where it is checked."""
    rows = ["| claim | seed § | the claim, in our words | checked in | measure |"]
    rows.append("|---|---|---|---|---|")
    for c in claims:
        where = f"`{c.path}`" + (f" ({c.source})" if c.source else "")
        rows.append(f"| {c.id} | {c.section} | {c.words} | {where} | {c.measure} |")
    return "\n".join(rows) + "\n"


def rules(claims: list[Claim]) -> str:
    """The rules of some claims as their verdicts state them, each text once (a wall-time rule
    names the claim's count and its rivals: the general rule is stated in its own section)."""
    texts = list(dict.fromkeys(rule for c in claims for rule in c.rules))
    head = "*As the verdict states it* (`rule` in `claims.csv`):"
    if len(texts) == 1:
        return f"{head} {texts[0]}.\n"
    return head + "\n\n" + "".join(f"- {text}.\n" for text in texts)


def block(key: str, claims: dict[str, Claim]) -> str:
    """The text of the generated part named ``key``: ``table``, ``wall-time rule``, or the
    rules of some claims (``rules C2, C3``)."""
    if key == "table":
        return table(list(claims.values()))
    if key == "wall-time rule":
        return f"*As the verdict states it* (`rule` in `claims.csv`): {wall_time_rule()}.\n"
    if key.startswith("rules "):
        return rules([claims[c] for c in key.removeprefix("rules ").split(", ")])
    raise KeyError(f"no generated part is called {key!r}")


RULES_END = "\n## The wall-time rule"  # the rules of a claim not yet placed go before it


def render(text: str, claims: list[Claim] | None = None) -> str:
    """``text`` with every generated part made afresh from the code. A claim stated in code
    whose rules no part holds yet (a new suite's) gets its paragraph at the end of the rules,
    its words for prose until someone writes more."""
    by_id = {c.id: c for c in (claims if claims is not None else stated())}
    placed = {c for k in keys(text) if k.startswith("rules ") for c in k[6:].split(", ")}
    new = "".join(
        f"**{c.id}.** {c.words[:1].upper()}{c.words[1:]} (`{c.path}`).\n\n"
        + BEGIN.format(key=f"rules {c.id}")
        + "<!-- end generated -->\n\n"
        for c in by_id.values()
        if c.id not in placed
    )
    if new:
        at = text.index(RULES_END) + 1
        text = text[:at] + new + text[at:]

    def fill(m: re.Match) -> str:
        return m["begin"] + block(m["key"], by_id) + m["end"]

    return BLOCK.sub(fill, text)


def keys(text: str) -> list[str]:
    return [m["key"] for m in BLOCK.finditer(text)]


def main(argv: list[str]) -> int:
    text = DOC.read_text()
    fresh = render(text)
    if "--check" in argv:
        if fresh != text:
            print(f"{DOC}: its generated parts are out of date: python -m bench.claims.doc")
            return 1
        return 0
    DOC.write_text(fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
