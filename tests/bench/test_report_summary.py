"""report.md leads with what a reader acts on: verdict counts, one line per claim with the
figure that decided it, each suite's headline ratio and the cases too noisy to trust; long
evidence stays out of table cells."""

import csv
import shutil

import pandas as pd
import pytest

from bench import report, verdicts
from bench.store import CLAIM_COLUMNS
from tests.bench.test_fits import frame

LONG = "the figure that decided it; " + "further evidence, " * 150


def test_the_deciding_figure_is_the_first_clause_outside_brackets():
    assert report.first_clause("0 of 9 wrong; control: 5 of 9 wrong") == "0 of 9 wrong"
    assert report.first_clause("fit (a; b) = 3; rest") == "fit (a; b) = 3"
    assert report.first_clause("no clause break") == "no clause break"


def test_long_text_is_cut_at_a_word_with_an_ellipsis():
    cut = report.shorten("word " * 100, 40)
    assert len(cut) <= 40 and cut.endswith("word…")
    assert report.shorten("short", 40) == "short"


def test_cases_whose_spread_exceeds_the_stated_fraction_are_listed_worst_first():
    df = frame(
        [
            dict(variant="calm", status="ok", time_median_s=1.0, time_iqr_s=0.1),
            dict(variant="wild", status="ok", time_median_s=1.0, time_iqr_s=0.9),
            dict(variant="loud", status="ok", time_median_s=1.0, time_iqr_s=0.3),
            dict(variant="gone", status="timeout"),
        ]
    )
    text = report.noisy_cases(df)
    assert f"above {report.NOISY_IQR:.0%} of the median): 2 of 3 timed cases" in text
    assert text.index("wild") < text.index("loud") and "calm" not in text


def test_the_headline_is_the_geometric_mean_of_each_variants_ratio_over_the_baseline():
    rows = [
        dict(suite="lstm", model="lstm", mode="train", variant=v, seq_len=t, n_devices=1)
        | dict(status="ok", time_median_s=s, work_flops=1.0)
        for v, t, s in [("base", 8, 1.0), ("base", 16, 2.0), ("fast", 8, 0.5), ("fast", 16, 0.5)]
    ]
    df = frame(rows)
    ratios = report.variant_ratios(df, {"lstm": {"train": "base"}})
    (line,) = report.headlines(df, ratios)
    assert line == "- **lstm**: train, speed-up over base: fast ×2.83 (2 cases, ×2–4)"


@pytest.fixture
def claimed_run(smoke_run, tmp_path):
    """The smoke run with two claims recorded, one of them with a very long ``measured``."""
    run = tmp_path / smoke_run.name
    shutil.copytree(smoke_run, run)
    with open(run / "claims.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(CLAIM_COLUMNS))
        w.writeheader()
        for claim, verdict in (("C2", "PASS"), ("C4", "INCONCLUSIVE")):
            w.writerow(
                dict(
                    claim=claim,
                    suite="lstm",
                    verdict=verdict,
                    check="a check",
                    measure="a measure",
                    rule="a rule",
                    measured=LONG,
                    statement="what the data say",
                )
            )
    return run


def test_the_report_opens_with_the_summary_and_keeps_table_cells_short(claimed_run):
    text = report.render(verdicts.judge_run(claimed_run)).read_text()
    summary = text.index("## Summary")
    assert summary < text.index("## Claims in detail") < text.index("## Measurements")
    assert "**Verdicts:** 1 PASS · 0 FAIL · 0 CORRECTED · 1 INCONCLUSIVE · 0 ERROR" in text
    # one line per claim: the claim in plain words (its module's Claim), verdict, deciding figure
    (c4,) = [line for line in text.splitlines() if line.startswith("| [C4](#claim-c4)")]
    assert "| INCONCLUSIVE |" in c4 and f"| {report.claim_texts()['C4']} |" in c4
    assert c4.endswith("| the figure that decided it |")
    assert "- **lstm**: " in text and "Too noisy to trust" in text
    cells = [c for line in text.splitlines() if line.startswith("|") for c in line.split(" | ")]
    assert max(map(len, cells)) <= report.MAX_CELL + 2
    # the evidence in full is below, as a paragraph, cut where it is very long
    assert '<a id="claim-c4"></a>' in text and "(full text: `claims.csv`)" in text


def test_a_headline_leaves_out_the_ratios_of_cases_too_noisy_to_trust():
    rows = [
        dict(suite="lstm", model="lstm", mode="train", variant=v, seq_len=t, n_devices=1)
        | dict(status="ok", time_median_s=s, time_iqr_s=iqr, work_flops=1.0)
        for v, t, s, iqr in [
            ("base", 8, 1.0, 0.01), ("base", 16, 2.0, 0.01), ("base", 32, 4.0, 0.01),
            ("fast", 8, 0.5, 0.01), ("fast", 16, 0.5, 0.01), ("fast", 32, 8.0, 6.0),
        ]
    ]  # fmt: skip
    df = frame(rows)
    ratios = report.variant_ratios(df, {"lstm": {"train": "base"}})
    assert ratios.too_noisy.tolist() == [False, False, True]
    (line,) = report.headlines(df, ratios)
    assert line == (
        "- **lstm**: train, speed-up over base: fast ×2.83 (2 cases, ×2–4; 1 too noisy, left out)"
    )
    all_noisy = ratios.assign(too_noisy=True)
    (line,) = report.headlines(df, all_noisy)
    assert line.endswith("fast: all 3 cases too noisy to trust, no ratio")


def test_device_constants_come_only_from_fits_whose_interval_is_narrower_than_the_slope():
    group = dict(brent_span_a_s_per_flop=1e-9, brent_span_b_s_per_step=1e-6)
    precise = pd.DataFrame([dict(suite="a", **group, slope=1.0, slope_ci95=0.1)])
    loose = pd.DataFrame([dict(suite="a", **group, slope=0.32, slope_ci95=0.67)])
    for fitted in (precise, loose):
        for column in report.fits.GROUP:
            fitted[column] = fitted.get(column, "x")
    assert "b = 1 µs per operation" in report.device_constants(precise)
    text = report.device_constants(loose)
    assert "µs per operation" not in text and "No device constants" in text


def test_a_run_without_experiments_says_its_claims_were_not_checked(smoke_run, tmp_path):
    run = tmp_path / smoke_run.name
    shutil.copytree(smoke_run, run)
    text = report.render(verdicts.judge_run(run)).read_text()
    summary = text.split("## Summary")[1].split("##")[0]
    assert "**Claims: not checked**: this run was made with `--no-experiments`" in summary


def _wall_row(claim, verdict, statement, measured, facts, measure="wall time vs steps (latency)"):
    return dict(claim=claim, verdict=verdict, check="c", measure=measure, rule="r",
                measured=measured, statement=statement, facts=facts)  # fmt: skip


JUDGE_HEADLINE = (
    "the claim's count predicts held-out time best, ≥ 1.2× better than every rival (held-out "
    "error 0.042 with steps, 0.091 with √steps, the closest rival)"
)


def test_the_first_screen_gives_each_wall_time_claim_one_line_with_how_sure_and_what_decides():
    rows = pd.DataFrame(
        [
            _wall_row("C11", "PASS", "wall time follows steps better than no count, √steps",
                      JUDGE_HEADLINE + "; 42 points",
                      dict(reason="beats every rival", rounds=12,
                           ratio={"no count": 3.8, "√steps": 2.18},
                           ratio_ci={"no count": (3.5, 4.1), "√steps": (1.82, 2.49)})),
            _wall_row("C8", "INCONCLUSIVE",
                      "the clock cannot decide: no latency-regime point measured",
                      "no latency-regime point measured", dict(reason="no latency points")),
            _wall_row("C13", "INCONCLUSIVE", "this device cannot decide the claim; more",
                      "forward T=4096 H=4: deer ×0.328", {}, measure="wall time vs the scan"),
            _wall_row("C1", "PASS", "adds", "0 of 9 wrong", {}, measure="exact count"),
        ]
    )  # fmt: skip
    smoke = report.clock_lines(rows, "smoke")
    lines = [line for line in smoke.splitlines() if line.startswith("- ")]
    assert [line[3:6].rstrip("]") for line in lines] == ["C11", "C8", "C13"]  # not C1's
    c11, c8, c13 = lines
    assert JUDGE_HEADLINE in c11  # the numbers, uncut
    assert "how sure: the closest rival (√steps) has ×2.18 [1.82, 2.49]" in c11
    assert "to decide" not in c11
    assert 'to decide: a larger profile: `make bench ARGS="--profile cpu"`' in c8
    assert "how sure" not in c8  # no interval from a fit that never ran
    assert "deer ×0.328" in c13 and "more" not in c13  # the statement's first clause
    on_cpu = [line for line in report.clock_lines(rows, "cpu").splitlines() if line]
    assert "to decide: the `full` profile on an accelerator" in on_cpu[-1]


def test_the_summary_table_keeps_a_deciding_clause_with_its_numbers_whole():
    rows = pd.DataFrame(
        [_wall_row("C11", "PASS", "s", JUDGE_HEADLINE + "; " + LONG, {})]
        + [_wall_row("C1", "PASS", "s", "x " * 200, {})]
    )
    text = report.verdict_summary(rows)
    assert f"| {JUDGE_HEADLINE} |" in text
    assert max(len(c) for line in text.splitlines() for c in line.split(" | ")) <= 162


def test_a_variant_whose_one_case_is_too_noisy_says_so_in_words_not_1_cases():
    g = pd.DataFrame([dict(speedup=2.0, too_noisy=True)])
    assert report._headline("fast", g) == "fast: its one case too noisy to trust, no ratio"


def test_a_speed_up_reads_one_way_in_the_headline_the_deer_section_and_c13():
    from bench.claims import deer
    from bench.suites.deer import speedup_grid, speedups

    size = dict(suite="deer", model="lstm", mode="forward", batch=1, seq_len=4096, hidden=4)
    rows = [
        size | dict(variant=v, status="ok", time_median_s=t, time_min_s=t, work_flops=1.0)
        | dict(n_devices=1)
        for v, t in [("sequential", 2e-3), ("deer", 6e-3)]
    ]  # fmt: skip
    df = frame(rows)
    ratios = report.variant_ratios(df, {"deer": {"forward": "sequential"}})
    (line,) = report.headlines(df, ratios)
    assert line == "- **deer**: forward, speed-up over sequential: deer ×0.333 (1 case)"
    table = speedups(df)
    assert speedup_grid(table)["T=4096"].tolist() == ["×0.333"]  # the DEER section
    assert "deer ×0.333" in deer.judge_wall_time(table).measured  # C13


def test_a_case_counted_too_noisy_says_so_on_its_own_row_by_the_same_measure():
    base = dict(suite="lstm", model="lstm", mode="train", n_devices=1, status="ok")
    note = "a long note " * 20
    timed = base | dict(seq_len=8, time_median_s=1.0)
    df = frame(
        [
            timed | dict(variant="steady", time_iqr_s=0.9, round_spread=0.03, note=note),
            timed | dict(variant="wild", time_iqr_s=0.01, round_spread=0.4, note=note),
            timed | dict(variant="solo", time_iqr_s=0.3),
        ]
    )
    assert ": 2 of 3 timed cases" in report.noisy_cases(df)
    rows = {
        line.split(" | ")[2]: line
        for line in report.measurements_section(df).splitlines()
        if line.startswith("| lstm")
    }
    assert "| 3% |" in rows["steady"] and "too noisy" not in rows["steady"]
    assert "| 40% too noisy |" in rows["wild"] and "| 30% too noisy |" in rows["solo"]


def test_a_clock_line_says_what_decided_once():
    """The statement's end and the measured figure that starts with it are merged, not
    repeated (a `no count fits: ...` reason said twice was seen in a cpu run)."""
    reason = "no count fits: the claim's held-out error is above 15%"
    statement = f"the clock cannot decide whether the time follows steps: {reason}"
    measured = f"{reason} (held-out error 0.310 with steps); 48 points"
    said = report._said(statement, measured)
    assert said.count(reason) == 1
    assert (
        said == f"the clock cannot decide whether the time follows steps: {measured.split(';')[0]}"
    )
    assert report._said("PASS: steps", "steps 0.04") == "PASS: steps 0.04"
    assert report._said("it held", "b = 2") == "it held (b = 2)"
