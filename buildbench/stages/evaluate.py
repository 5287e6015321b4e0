"""evaluate: baselines on every written task variant; bootstrap CIs and validity diagnostics of the retrieval
task; how the downsampled corpus ranks models against the full one."""

from __future__ import annotations

import json
import logging
from typing import Optional

import pyarrow as pa

from ..engine.stage import StageContext, StageResult
from ..evaluation.evaluate import evaluate_task
from ..evaluation.validity import evaluate_with_ci, format_ci_table, format_diagnostics
from ..tasks.assemble import set_card_section
from ..tasks.downsample import ranking_agreement
from ..tasks.variants import DOWNSAMPLED, RETRIEVAL, VARIANTS
from .common import embedding_cache

log = logging.getLogger(__name__)

CONFIG_KEYS = ("seed", "domain.eval", "domain.downsample")

SCORES_SCHEMA = pa.schema([("task", pa.string()), ("model", pa.string()), ("metric", pa.string()),
                           ("value", pa.float64())])
# Models mteb cannot score: they are not sentence-transformers models.
NOT_SENTENCE_TRANSFORMERS = ("bm25", "random", "static")


def run(ctx: StageContext) -> StageResult:
    pack = ctx.config.domain
    cache = embedding_cache(ctx)
    k = pack.eval.k
    rows = []
    tasks = ctx.read("tasks").to_pylist()
    results: dict[str, dict] = {}
    for t in tasks:
        variant = VARIANTS[t["variant"]]
        if variant.mteb_task is not None:
            scores = mteb_scores(variant.mteb_task(t["path"]), pack.eval.models)
            rows += [{"task": t["variant"], "model": m, "metric": name, "value": float(v)}
                     for m, d in scores.items() for name, v in d.items()]
            continue
        models = list(pack.eval.models)
        if t["variant"] in (RETRIEVAL, DOWNSAMPLED) and pack.downsample.enabled:
            models += [m for m in pack.downsample.agreement_models if m not in models]
        results[t["variant"]] = evaluate_task(t["path"], models, k=k, cache=cache)
        rows += [{"task": t["variant"], "model": m, "metric": name, "value": float(v)}
                 for m, d in results[t["variant"]].items() for name, v in d.items()]
    validity = validity_of(ctx, next((t for t in tasks if t["variant"] == RETRIEVAL), None))
    if DOWNSAMPLED in results:
        main = f"ndcg_at_{k}"
        models = pack.downsample.agreement_models
        agree = ranking_agreement({m: results[RETRIEVAL][m][main] for m in models},
                                  {m: results[DOWNSAMPLED][m][main] for m in models})
        for key, v in agree.items():
            if key == "scores":
                for m, pair in v.items():
                    ctx.stats[f"agreement.full.{m}"], ctx.stats[f"agreement.downsampled.{m}"] = pair["full"], pair["sub"]
            else:
                ctx.stats[f"agreement.{key}"] = " > ".join(v) if isinstance(v, list) else v
    return StageResult(outputs={"scores": pa.Table.from_pylist(rows, schema=SCORES_SCHEMA),
                                "validity": pa.table({"json": [json.dumps(validity)]})})


def validity_of(ctx: StageContext, task: Optional[dict]) -> dict:
    """Bootstrap CIs and validity diagnostics of the retrieval task (models scored through mteb where they are
    sentence-transformers), also written into its dataset card."""
    if task is None:
        return {}
    pack = ctx.config.domain
    models = list(dict.fromkeys(["random", *pack.eval.models, *pack.eval.validity_models]))
    result = evaluate_with_ci(task["path"], models, k=pack.eval.k, cache=embedding_cache(ctx),
                              n_boot=pack.eval.bootstrap, seed=ctx.config.seed, via_mteb=True)
    set_card_section(task["path"], "validity", [
        "## Validity", "",
        f"Scores with bootstrap 95% confidence intervals over the {result['queries']} queries "
        f"({result['n_boot']} resamples), and the diagnostics buildbench checks:", "",
        "```", format_ci_table(result), "", format_diagnostics(result), "```"])
    flagged = [name for name, d in result.get("diagnostics", {}).items() if d.get("flag")]
    if flagged:
        log.warning("validity diagnostics flagged: %s (see report.html)", ", ".join(flagged))
    return result


def mteb_scores(task, models: list[str]) -> dict[str, dict[str, float]]:
    """Each sentence-transformers model among ``models`` scored on an mteb task by mteb itself."""
    import mteb

    from ..engine.embeddings import get_model

    out = {}
    for name in models:
        if name in NOT_SENTENCE_TRANSFORMERS:
            continue
        result = mteb.evaluate(get_model(name).model, tasks=[task], cache=None, show_progress_bar=False,
                               encode_kwargs={"show_progress_bar": False})
        scores = result.task_results[0].scores["test"][0]
        out[name] = {task.metadata.main_score: float(scores["main_score"])}
    return out
