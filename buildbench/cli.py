"""The command line: a thin layer over buildbench.pipeline and buildbench.tasks.

    build-bench --domain finance [--docs PATH ...] [--out DIR] [--max-docs N] [--queries-per-chunk K] [--seed S]
    build-bench stages
    build-bench eval TASK_DIR [--models bm25 minilm ...]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Optional

from .errors import BuildBenchError

SUBCOMMANDS = ("build", "stages", "eval")


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="build-bench",
        description="Build a text-embedding retrieval benchmark (MTEB v2 layout) from domain documents. "
        "Without a subcommand, runs `build`. Rerunning the same command resumes and reuses finished stages.",
        epilog="Other commands: `build-bench stages` lists the pipeline stages; "
        "`build-bench eval TASK_DIR` evaluates models on a built task.",
    )
    p.add_argument("--domain", required=True,
                   help="a bundled domain pack name (finance) or the path of your own pack (.yaml)")
    p.add_argument("--docs", nargs="+", action="extend", metavar="PATH",
                   help="input files, folders, globs or hf://datasets/NAME[:config][@revision]; repeatable. "
                   "Default: the pack's Hub dataset when reachable, else its bundled sample corpus")
    p.add_argument("--out", metavar="DIR", help="run directory (default: a folder named after the domain)")
    p.add_argument("--max-docs", type=int, metavar="N", help="read at most N documents")
    p.add_argument("--queries-per-chunk", type=int, metavar="K", help="queries to write per chunk, each with its own persona and style (default 2)")
    p.add_argument("--max-queries", type=int, metavar="N",
                   help="query budget: write queries for a seeded sample of chunks only (the rest of the corpus "
                   "stays as distractors). Default: every chunk")
    p.add_argument("--seed", type=int, metavar="S", help="seed for sampling and generation (default 0)")
    p.add_argument("--generator", choices=["auto", "local", "openai", "vllm"],
                   help="LLM backend of the query writer. auto (default): vllm with a CUDA GPU, else openai when "
                   "--base-url is given, else local (llama.cpp on the CPU)")
    p.add_argument("--model", metavar="NAME",
                   help="the query writer's model: for local gemma3-270m (default), smollm2-135m-instruct or a "
                   ".gguf path; for openai/vllm the served model name")
    p.add_argument("--base-url", metavar="URL",
                   help="an OpenAI-compatible server's /v1 address; the API key is read from $OPENAI_API_KEY "
                   "(or the variable the pack names in generator.api_key_env), never from the command line")
    p.add_argument("--corpus-size", type=int, metavar="N",
                   help="target corpus size of the downsampled task (gold documents plus each query's pooled "
                   "top candidates, filled at random up to N). Default: no random fill")
    p.add_argument("--judge", action="store_true",
                   help="run the LLM judge (calibrated on control pairs first; see domain pack `repair`)")
    p.add_argument("--until", metavar="STAGE", help="stop after this stage (see `build-bench stages`)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def _eval_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="build-bench eval", description="Evaluate models on a built task folder.")
    p.add_argument("task_dir", help="a task folder written by build-bench (<out>/task)")
    p.add_argument("--models", nargs="+", default=["bm25", "minilm"],
                   help="bm25, random, minilm, static, or a sentence-transformers model path")
    p.add_argument("--k", type=int, default=10, help="cut-off for the metrics (default 10)")
    p.add_argument("--json", action="store_true", help="print the scores as JSON")
    return p


def _setup_logging(verbose: bool) -> None:
    from rich.console import Console
    from rich.logging import RichHandler

    # Logs go to stderr; stdout carries only the summary and the score table.
    handler = RichHandler(console=Console(stderr=True), show_path=False, rich_tracebacks=verbose)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s",
                        handlers=[handler], force=True)
    for noisy in ("httpx", "urllib3", "datasets", "huggingface_hub", "sentence_transformers", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def cmd_build(argv: list[str]) -> int:
    from .config import make_config
    from .pipeline import STAGES, build
    from .tasks.evaluate import format_table

    args = _build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    config = make_config(args.domain, out=args.out, docs=args.docs, max_docs=args.max_docs,
                         queries_per_chunk=args.queries_per_chunk, max_queries=args.max_queries, seed=args.seed,
                         generator={"backend": args.generator, "model": args.model, "base_url": args.base_url},
                         pack_overrides={"downsample.corpus_size": args.corpus_size,
                                         "recipes.judge": True if args.judge else None})
    stages = None
    if args.until:
        names = [s.name for s in STAGES]
        if args.until not in names:
            raise BuildBenchError(f"unknown stage '{args.until}' (stages: {', '.join(names)})")
        stages = names[: names.index(args.until) + 1]
    report = build(config, progress=not args.no_progress, stages=stages)
    _print_summary(report, format_table)
    return 0


def _print_summary(report: dict, format_table) -> None:
    out = sys.stdout
    st = report["stages"]
    print(f"\nRun directory: {report['task_dir'].rsplit('/task', 1)[0]}   wall time {report['wall_seconds']}s", file=out)
    print(f"{'stage':<18} {'seconds':>8} {'in':>6} {'out':>6} {'dropped':>8}  this run", file=out)
    for name, s in st.items():
        c = s.get("counts") or {}
        this = "skipped (up to date)" if s["this_run"].get("skipped") else f"{s['this_run'].get('seconds', 0)}s"
        print(f"{name:<18} {s.get('seconds') or 0:>8.1f} {c.get('in', ''):>6} {c.get('out', ''):>6} "
              f"{c.get('dropped', ''):>8}  {this}", file=out)
    if (st.get("ingest", {}).get("stats") or {}).get("bundled_sample"):
        print("Built from the bundled sample corpus: no --docs given and the Hub is not reachable.", file=out)
    llm = report["llm"]
    print(f"LLM calls: {llm['new_calls_this_run']} new this run, {llm['cache_hits_this_run']} from cache, "
          f"{llm['retries_this_run']} retries, {llm['failures_this_run']} failures "
          f"({llm['calls_total']} calls in the cache: {llm['tokens_in_total']} tokens in, "
          f"{llm['tokens_out_total']} out)", file=out)
    for item in report["inputs"]["skipped"]:
        print(f"skipped input {item['item_id']}: {item['reason']} ({item['detail']})", file=out)
    repair = report.get("qrels_repair") or {}
    if repair:
        cal = repair.get("judge_calibration") or {}
        judge = (f"judge trusted (balanced accuracy {cal.get('balanced_accuracy')})" if repair["judge_trusted"]
                 else f"judge not trusted (balanced accuracy {cal.get('balanced_accuracy')})" if cal.get("controls")
                 else "no judge")
        print(f"Qrels repair: {repair['false_negatives_added']} false negatives added to the qrels, "
              f"{sum(repair['queries_dropped'].values())} queries dropped, {repair['hard_negatives']} hard "
              f"negatives kept; {judge}. Per-query decisions: {report.get('audit_log')}", file=out)
    for variant, scores in (report.get("task_scores") or {}).items():
        print(f"\n{variant}:", file=out)
        print(format_table(scores), file=out)
    agree = report.get("downsample_agreement") or {}
    if agree.get("spearman_rho") is not None:
        print(f"Downsampled vs full corpus, model ranking agreement: Spearman {agree['spearman_rho']:.3f}, "
              f"Kendall {agree['kendall_tau']:.3f} over {agree['models']} models", file=out)
    print(f"Task: {report['task_dir']}   report: {report['task_dir'].rsplit('/task', 1)[0]}/report.json", file=out)


def cmd_stages(argv: list[str]) -> int:
    from .pipeline import STAGES

    for s in STAGES:
        llm = " [LLM]" if s.needs_llm else ""
        print(f"{s.name:<18} {s.kind:<6} {', '.join(s.inputs) or '-':<22} -> {', '.join(s.outputs):<16}{llm}  "
              f"{s.description}")
    return 0


def cmd_eval(argv: list[str]) -> int:
    from pathlib import Path

    from .tasks.evaluate import evaluate_task, format_table

    args = _eval_parser().parse_args(argv)
    _setup_logging(False)
    scores = evaluate_task(Path(args.task_dir), args.models, k=args.k)
    print(json.dumps(scores, indent=2) if args.json else format_table(scores))
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    cmd = argv[0] if argv and argv[0] in SUBCOMMANDS else "build"
    if argv and argv[0] in SUBCOMMANDS:
        argv = argv[1:]
    try:
        return {"build": cmd_build, "stages": cmd_stages, "eval": cmd_eval}[cmd](argv)
    except BuildBenchError as exc:
        print(f"build-bench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("build-bench: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
