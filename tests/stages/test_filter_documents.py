"""filter_documents: exact and near duplicates and other-language documents are dropped, each with its reason;
the filter stats come back typed and in chain order."""

from __future__ import annotations

from .conftest import PASSAGES, docs_table, make_cfg, run_global


def test_duplicates_and_other_languages_are_dropped(tmp_path, rundir):
    d1 = PASSAGES[0][1]
    rows = [*PASSAGES[:4],
            ("copy", d1.upper()),  # the same text after normalisation
            ("near", d1.replace("strongly committed", "firmly committed")),  # one word changed
            ("german", "Der Ausschuss hat beschlossen, den Zielkorridor für den Leitzins anzuheben, da die "
                       "Inflation weiterhin erhöht ist und die Arbeitslosigkeit niedrig bleibt.")]
    rundir.write("documents", docs_table(rows))
    result, _ = run_global("filter_documents", make_cfg(tmp_path / "run"), rundir)
    assert result.outputs["documents_clean"]["id"].to_pylist() == ["d1", "d2", "d3", "d4"]
    assert {(d.stage, d.item_id, d.reason) for d in result.drops} == {
        ("doc_dedup", "copy", "exact_duplicate"), ("doc_dedup", "near", "near_duplicate"),
        ("doc_language", "german", "wrong_language")}
    dedup, language = result.filters
    assert (dedup.name, dedup.n_in, dedup.kept, dedup.dropped) == ("doc_dedup", 7, 5, 2)
    assert dedup.reasons == {"exact_duplicate": 1, "near_duplicate": 1}
    assert (language.name, language.n_in, language.kept, language.reasons) == ("doc_language", 5, 4,
                                                                                {"wrong_language": 1})
    assert language.extra.get("detected.de") == 1 and language.extra.get("detected.en") == 4


def test_disabled_filters_keep_everything(tmp_path, rundir):
    rows = [*PASSAGES[:2], ("copy", PASSAGES[0][1])]
    rundir.write("documents", docs_table(rows))
    cfg = make_cfg(tmp_path / "run", **{"filters.doc_dedup.enabled": False, "filters.language.enabled": False})
    result, _ = run_global("filter_documents", cfg, rundir)
    assert result.outputs["documents_clean"]["id"].to_pylist() == ["d1", "d2", "copy"]
    assert result.drops == [] and result.filters == []
