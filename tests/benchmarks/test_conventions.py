"""pytest-benchmark's conventions in this project: ids that `-k` selects by, groups of like-sized
cases, and a numeric order of sizes (tests/benchmarks/test_workloads.py, tests/conftest.py)."""

import re

from _pytest.mark.expression import Expression

from tests.benchmarks.test_workloads import CASES, case_id, group
from tests.conftest import pytest_benchmark_group_stats


def test_every_id_is_unique_and_selectable_by_its_sizes_with_k():
    ids = [case_id(c) for c in CASES]
    assert len(set(ids)) == len(ids)
    assert not any(re.search(r"[=\s,\[\]]", i) for i in ids)
    expression = Expression.compile("lstm and seq_len_16")
    chosen = [i for i in ids if expression.evaluate(i.__contains__)]
    expected = [case_id(c) for c in CASES if c.suite == "lstm" and c.sizes.get("seq_len") == 16]
    assert chosen == expected and len(expected) > 1


def test_a_group_holds_the_variants_of_one_suite_mode_and_size():
    lstm = [c for c in CASES if c.suite == "lstm" and c.mode == "train"]
    by_group = {}
    for c in lstm:
        by_group.setdefault(group(c), []).append(c)
    for members in by_group.values():
        assert len({tuple(sorted(c.sizes.items())) for c in members}) == 1
    assert any(len({c.variant for c in members}) > 1 for members in by_group.values())


def test_groups_and_names_sort_by_the_value_of_their_sizes():
    names = ["seq_len_1024", "seq_len_128", "seq_len_16", "seq_len_256"]
    benchmarks = [
        {"group": f"lstm/forward seq_len={n.split('_')[-1]}", "name": f"test[{n}]"} for n in names
    ]
    benchmarks += [{"group": "lstm/forward seq_len=16", "name": "test[seq_len_16-devices_8]"}]
    benchmarks += [{"group": "lstm/forward seq_len=16", "name": "test[seq_len_16-devices_16]"}]
    groups = pytest_benchmark_group_stats(None, benchmarks, "group")
    assert [g for g, _ in groups] == [
        "lstm/forward seq_len=16", "lstm/forward seq_len=128",
        "lstm/forward seq_len=256", "lstm/forward seq_len=1024",
    ]  # fmt: skip
    assert [b["name"] for b in groups[0][1]] == [
        "test[seq_len_16-devices_8]", "test[seq_len_16-devices_16]", "test[seq_len_16]"
    ]  # fmt: skip
