"""`make bench` with a subset of benchmarks replaces only their entries in results.json."""

from benchmarks.__main__ import BENCHMARKS, merge_results


def test_a_partial_run_keeps_the_other_entries_and_the_canonical_order():
    previous = [{"name": "augment", "ratio": 8.8}, {"name": "probe", "ratio": 4.2}, {"name": "custom", "ratio": 1}]
    latest = [{"name": "probe", "ratio": 1.02}, {"name": "encoder", "ratio": 1.4}]
    merged = merge_results(previous, latest)
    assert [r["name"] for r in merged] == ["augment", "encoder", "probe", "custom"]
    assert {r["name"]: r["ratio"] for r in merged} == {"augment": 8.8, "encoder": 1.4, "probe": 1.02, "custom": 1}
    assert BENCHMARKS.index("augment") < BENCHMARKS.index("encoder") < BENCHMARKS.index("probe")
