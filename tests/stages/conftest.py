"""Stage bodies run on small Arrow tables in a tmp RunDir, each with the context the runner would give it."""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow as pa
import pytest

from buildbench.config import BuildConfig, make_config
from buildbench.engine.rundir import RunDir
from buildbench.engine.stage import StageContext, StageResult
from buildbench.pipeline import STAGES
from buildbench.records import Chunk, Document, Query, to_table

# Light settings: no dense model beyond the static one, no LLM.
LIGHT = {
    "filters.round_trip.enabled": False, "filters.easiness.enabled": False, "filters.semantic_dedup.enabled": False,
    "mining.retrievers": ["bm25", "static"], "mining.score_models": ["static"],
    "downsample.enabled": False,
}


def make_cfg(out: Path, docs: list[str] | None = None, **pack_overrides) -> BuildConfig:
    return make_config("finance", out=str(out), docs=docs or [], pack_overrides={**LIGHT, **pack_overrides})


def stage(name: str):
    return next(st for st in STAGES if st.name == name)


def context(name: str, config: BuildConfig, rundir: RunDir, services: dict | None = None) -> StageContext:
    """The context the runner gives the stage ``name``: its declared inputs, the registry."""
    st = stage(name)
    return StageContext(config=config, rundir=rundir, stage=name, log=logging.getLogger(f"test.{name}"),
                        services={} if services is None else services, inputs=st.inputs, registry=STAGES)


def run_global(name: str, config: BuildConfig, rundir: RunDir) -> tuple[StageResult, StageContext]:
    ctx = context(name, config, rundir)
    result = stage(name).fn(ctx)
    assert set(result.outputs) == set(stage(name).outputs)
    return result, ctx


@pytest.fixture
def rundir(tmp_path: Path) -> RunDir:
    return RunDir(tmp_path / "run")


def docs_table(rows: list[tuple[str, str]]) -> pa.Table:
    return to_table([Document(id=i, text=t, title=i, source="test") for i, t in rows], Document)


def chunks_table(rows: list[tuple[str, str, str]]) -> pa.Table:
    """(id, doc_id, text) rows."""
    return to_table([Chunk(id=i, doc_id=d, text=t, title=d, position=n) for n, (i, d, t) in enumerate(rows)], Chunk)


def queries_table(rows: list[tuple[str, str, list[str]]], **kw) -> pa.Table:
    """(id, text, chunk_ids) rows, written by the persona recipe."""
    fields = {"recipe": "persona", "persona": "economist", "style": "keyword", "difficulty": "easy", "language": "en",
              **kw}
    return to_table([Query(id=i, text=t, chunk_ids=c, **fields) for i, t, c in rows], Query)


# Six passages on different topics, each long enough to chunk and to retrieve.
PASSAGES = [
    ("d1", "The Committee decided to raise the target range for the federal funds rate to 5-1/4 to 5-1/2 percent. "
           "Inflation remains elevated and the Committee is strongly committed to returning it to 2 percent."),
    ("d2", "Banks reported tighter lending standards for commercial and industrial loans to firms of all sizes, "
           "citing a less favorable economic outlook and reduced tolerance for risk."),
    ("d3", "Treasury market liquidity deteriorated in March as dealers faced balance sheet constraints, and bid-ask "
           "spreads on off-the-run securities widened sharply."),
    ("d4", "Household spending grew moderately, supported by strong labor income, while residential investment "
           "declined for the sixth consecutive quarter under higher mortgage rates."),
    ("d5", "The Federal Reserve will continue reducing its holdings of Treasury securities and agency mortgage-backed "
           "securities as described in its previously announced plans."),
    ("d6", "Capital ratios at the largest banks remained well above regulatory minimums, and stress test results "
           "showed losses would be absorbed without breaching requirements."),
]
