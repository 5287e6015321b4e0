"""The filter chain: each filter runs over what the earlier ones kept; one typed FilterStats per filter, in
chain order; the stats of several shards summed by name."""

from __future__ import annotations

from buildbench.domain_pack import DedupConfig, LengthConfig
from buildbench.quality import LengthFilter
from buildbench.quality.chain import Dedup, FilterStats, apply_filters, merge_filter_stats


class EveryOther:
    """Drops every other item it sees, and counts what it saw."""

    name = "every_other"

    def apply(self, ids, texts, refs=None):
        from buildbench.quality import FilterResult
        from buildbench.records import Drop

        keep = [i % 2 == 0 for i in range(len(ids))]
        drops = [Drop(self.name, x, "odd", r or "") for x, k, r in zip(ids, keep, refs or [None] * len(ids)) if not k]
        return FilterResult(keep, drops, {"seen": len(ids)})


def test_filters_run_in_order_over_what_is_left():
    ids = ["a", "b", "c", "d", "e", "f"]
    texts = ["one two three", "x", "one two three", "four five six", "seven eight nine", "ten eleven twelve"]
    steps = [(LengthFilter(LengthConfig(min_words=2), stage="length"), None),
             (Dedup(DedupConfig(), "dedup"), None),
             (EveryOther(), [f"ref-{i}" for i in ids])]
    drops, keep, stats = apply_filters(steps, ids, texts)
    assert keep == [True, False, False, False, True, False]
    assert [(d.stage, d.item_id, d.reason) for d in drops] == [
        ("length", "b", "too_short"), ("dedup", "c", "exact_duplicate"), ("every_other", "d", "odd"),
        ("every_other", "f", "odd")]
    assert drops[-1].detail == "ref-f"  # refs follow the items that are left
    assert [(s.name, s.n_in, s.kept, s.dropped, s.reasons) for s in stats] == [
        ("length", 6, 5, 1, {"too_short": 1}), ("dedup", 5, 4, 1, {"exact_duplicate": 1}),
        ("every_other", 4, 2, 2, {"odd": 2})]
    assert stats[2].extra == {"seen": 4}
    assert stats[2].to_json() == {"name": "every_other", "in": 4, "kept": 2, "dropped": 2,
                                  "seconds": round(stats[2].seconds, 4), "reasons": {"odd": 2}, "extra": {"seen": 4}}


def test_shards_sum_by_name_in_first_seen_order():
    a = [FilterStats("length", 10, 8, 2, 0.5, {"too_short": 2}, {"detected.en": 8}),
         FilterStats("dedup", 8, 7, 1, 0.25, {"exact_duplicate": 1})]
    b = [FilterStats("length", 5, 5, 0, 0.25, {}, {"detected.en": 4, "detected.de": 1}),
         FilterStats("dedup", 5, 3, 2, 0.5, {"exact_duplicate": 1, "near_duplicate": 1}),
         FilterStats("late", 3, 3, 0)]
    merged = merge_filter_stats([a, b])
    assert [m.to_json() for m in merged] == [
        {"name": "length", "in": 15, "kept": 13, "dropped": 2, "seconds": 0.75, "reasons": {"too_short": 2},
         "extra": {"detected.de": 1, "detected.en": 12}},
        {"name": "dedup", "in": 13, "kept": 10, "dropped": 3, "seconds": 0.75,
         "reasons": {"exact_duplicate": 2, "near_duplicate": 1}, "extra": {}},
        {"name": "late", "in": 3, "kept": 3, "dropped": 0, "seconds": 0.0, "reasons": {}, "extra": {}}]
    assert a[0].n_in == 10  # the inputs are not changed
    assert FilterStats.from_json(merged[0].to_json()) == merged[0]
