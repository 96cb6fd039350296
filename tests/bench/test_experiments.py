"""Every suite's claim experiments run at the smoke profile and return well-formed verdicts."""

import pytest

from bench.records import VERDICTS
from bench.workloads import suites

WITH_EXPERIMENTS = [s for s in suites().values() if s.experiments is not None]


@pytest.mark.parametrize("suite", WITH_EXPERIMENTS, ids=[s.name for s in WITH_EXPERIMENTS])
def test_experiments_return_claim_rows_from_measurements(suite, tmp_path):
    rows = suite.experiments("smoke", tmp_path)
    assert rows, "a suite with experiments must report at least one claim"
    for row in rows:
        assert row["claim"].startswith("C") and row["claim"][1:].isdigit()
        assert row["verdict"] in VERDICTS and row["verdict"] != "ERROR"
        assert row["measured"] and row["check"]
        if row["verdict"] == "CORRECTED":
            assert row.get("statement"), "a CORRECTED claim states the right statement"
    for csv in tmp_path.glob("*.csv"):
        assert csv.stat().st_size > 0
