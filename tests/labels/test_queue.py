"""The review queue: items read from a run folder as a build writes it, and the stratified sample."""

from __future__ import annotations

import random
from collections import Counter
from itertools import product
from pathlib import Path

import pytest

from buildbench.cli import main
from buildbench.engine.rundir import RunDir
from buildbench.errors import ConfigError
from buildbench.labels.queue import (
    STRATUM,
    Passage,
    ReviewItem,
    as_id_list,
    review_items,
    stratified_sample,
)
from tests.labels.rundata import (
    DOC_FILTERS,
    IMG_PASSAGE,
    QUERY_FILTERS,
    SCRIPT_QUERY,
    make_run,
)

PERSONAS, STYLES, LEVELS, RECIPES = ("analyst", "journalist", "student"), ("keyword", "question"), \
    ("easy", "hard"), ("inpars", "yourbench")


def pool() -> list[ReviewItem]:
    """24 strata, very uneven: the first stratum has 30 items, some have 1."""
    items = []
    for k, (p, s, d, r) in enumerate(product(PERSONAS, STYLES, LEVELS, RECIPES)):
        for j in range(30 if k == 0 else 1 + k % 4):
            items.append(ReviewItem(query_id=f"q{k:02d}-{j:02d}", text="t", positives=(Passage("c", "x"),),
                                    persona=p, style=s, difficulty=d, recipe=r))
    return items


def test_every_stratum_once_when_n_is_the_number_of_strata():
    items = pool()
    sample = stratified_sample(items, 24, seed=3)
    assert len(sample) == 24 and len({it.query_id for it in sample}) == 24
    assert Counter(it.stratum for it in sample) == Counter({s: 1 for s in {it.stratum for it in items}})


def test_fewer_picks_than_strata_still_spread_every_value():
    sample = stratified_sample(pool(), 6, seed=1)
    assert len(sample) == 6 and len({it.stratum for it in sample}) == 6
    for d, values in enumerate((PERSONAS, STYLES, LEVELS, RECIPES)):
        counts = Counter(it.stratum[d] for it in sample)
        assert set(counts) == set(values), STRATUM[d]  # every persona, style, difficulty and recipe
        assert max(counts.values()) - min(counts.values()) <= 1, (STRATUM[d], counts)


def test_more_picks_than_strata_stay_even():
    items = pool()
    sample = stratified_sample(items, 60, seed=0)
    counts = Counter(it.stratum for it in sample)
    size = Counter(it.stratum for it in items)
    # a stratum with fewer picks than the most picked one is exhausted
    top = max(counts.values())
    assert all(counts[s] >= top - 1 or counts[s] == size[s] for s in size)
    assert len(sample) == 60 and len({it.query_id for it in sample}) == 60


def test_deterministic_for_a_seed_whatever_the_input_order():
    items = pool()
    shuffled = items[:]
    random.Random(9).shuffle(shuffled)
    first = [it.query_id for it in stratified_sample(items, 30, seed=7)]
    assert first == [it.query_id for it in stratified_sample(shuffled, 30, seed=7)]
    assert first == [it.query_id for it in stratified_sample(items, 30, seed=7)]
    others = {tuple(it.query_id for it in stratified_sample(items, 30, seed=s)) for s in range(5)}
    assert len(others) > 1  # the seed matters


def test_n_over_the_pool_returns_everything():
    items = pool()
    sample = stratified_sample(items, 10_000, seed=0)
    assert sorted(it.query_id for it in sample) == sorted(it.query_id for it in items)
    assert stratified_sample(items, 0) == [] and stratified_sample([], 5) == []
    with pytest.raises(ValueError):
        stratified_sample(items, -1)


def test_chunk_ids_in_any_of_their_forms():
    assert as_id_list(["a", "b"]) == ["a", "b"]
    assert as_id_list('["a", "b"]') == ["a", "b"]
    assert as_id_list("['a', 'b']") == ["a", "b"]
    assert as_id_list("a") == ["a"] and as_id_list(None) == [] and as_id_list("") == []


def test_review_items_of_a_run(tmp_path: Path):
    run = make_run(tmp_path / "run")
    items = review_items(run.root)
    assert [it.query_id for it in items] == [f"q{i}" for i in range(8)]
    q0 = items[0]
    assert q0.text == SCRIPT_QUERY and q0.positives[0].text == IMG_PASSAGE and q0.positives[0].doc_id == "d0"
    assert q0.filters == tuple(DOC_FILTERS + QUERY_FILTERS) and q0.dataset == "queries"
    assert len(q0.candidates) == 8 and [c.rank for c in q0.candidates] == list(range(1, 9))
    assert "c0" not in q0.candidate_ids  # never its own positive
    assert {c.passage.kind for c in items[1].candidates} == {"corpus", "synthetic"}
    assert len(review_items(run.root, max_candidates=3)[0].candidates) == 3


def test_final_queries_when_queries_are_missing_and_errors(tmp_path: Path):
    run = make_run(tmp_path / "run")
    table = run.read("queries")
    run.reset_dataset("queries")
    run.write("final_queries", table.slice(0, 3))
    items = review_items(run.root)
    assert [it.query_id for it in items] == ["q0", "q1", "q2"] and items[0].dataset == "final_queries"
    run.reset_dataset("final_queries")
    with pytest.raises(ConfigError, match="no queries to review"):
        review_items(run.root)
    (tmp_path / "plain").mkdir()
    with pytest.raises(ConfigError, match="not a build-bench run folder"):
        review_items(tmp_path / "plain")


def test_the_cli_refuses_a_folder_that_is_no_run(tmp_path: Path, capsys):
    (tmp_path / "plain").mkdir()
    assert main(["label", str(tmp_path / "plain"), "--no-browser"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a build-bench run folder" in err[0]
    RunDir(tmp_path / "empty-run")
    assert main(["label", str(tmp_path / "empty-run"), "--no-browser"]) == 2
    assert "no queries to review" in capsys.readouterr().err
