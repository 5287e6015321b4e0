"""The command line: a thin layer over buildbench.pipeline and buildbench.tasks.

    build-bench --domain finance [--docs PATH ...] [--out DIR] [--max-docs N] [--queries-per-chunk K] [--seed S]
    build-bench stages
    build-bench eval TASK_DIR [--models random bm25 static minilm ...] [--k 10] [--bootstrap 1000] [--json] [--out FILE]
    build-bench compare SYNTH_TASK REFERENCE [--models ...] [--bootstrap N] [--out FILE]
    build-bench publish TASK_DIR --to hf://ORG/NAME | file://ROOT/ORG/NAME [--version X.Y.Z | --bump major|minor|patch] [--message M]
    build-bench validate TASK_DIR [--registry PATH] [--json]
    build-bench submit TASK_DIR --to hf://ORG/NAME | file://ROOT/ORG/NAME [--registry PATH]
    build-bench review hf://ORG/NAME | file://ROOT/ORG/NAME --pr N --registry PATH [--version X.Y.Z | --bump ...]
    build-bench list --registry PATH

--registry defaults to $BUILDBENCH_REGISTRY: a registry folder, or a file://ROOT/ORG/NAME or hf://ORG/NAME repo.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Optional

from .errors import BuildBenchError

SUBCOMMANDS = ("build", "stages", "eval", "compare", "publish", "validate", "submit", "review", "list")
REGISTRY_ENV = "BUILDBENCH_REGISTRY"

DEFAULT_EVAL_MODELS = ["random", "bm25", "static", "minilm"]


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="build-bench",
        description="Build a text-embedding retrieval benchmark (MTEB v2 layout) from domain documents. "
        "Without a subcommand, runs `build`. Rerunning the same command resumes and reuses finished stages.",
        epilog="Other commands: `build-bench stages` lists the pipeline stages; "
        "`build-bench eval TASK_DIR` evaluates models on a built task with bootstrap confidence intervals and "
        "validity diagnostics; `build-bench compare SYNTH_TASK REFERENCE` checks that a built task ranks models "
        "as a human-labelled reference (BEIR or MTEB folder) does; `build-bench publish TASK_DIR --to hf://ORG/NAME` "
        "publishes a task folder as a new version (tag vX.Y.Z) of a Hub dataset repo, or of a local hub with "
        "--to file://ROOT/ORG/NAME. Community submissions: `build-bench validate TASK_DIR` checks a task folder "
        "(safety, schema, language, license, overlap with the registry, baselines); `build-bench submit TASK_DIR "
        "--to REPO` opens a pull request with it; `build-bench review REPO --pr N` re-validates, merges and "
        "registers it; `build-bench list` shows the registry's tasks and benchmarks.",
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


def _add_scoring_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", nargs="+", default=list(DEFAULT_EVAL_MODELS),
                   help="bm25, random, minilm, static, or a sentence-transformers model path "
                   f"(default: {' '.join(DEFAULT_EVAL_MODELS)})")
    p.add_argument("--k", type=int, default=10, help="cut-off for the metrics (default 10)")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                   help="bootstrap resamples of the queries for confidence intervals (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and the random model (default 0)")
    p.add_argument("--via-mteb", action=argparse.BooleanOptionalAction, default=None,
                   help="search with mteb itself for sentence-transformers models (minilm, model paths); "
                   "default: when mteb is installed. BM25, random and static always use buildbench's search")
    p.add_argument("--cache-dir", metavar="DIR",
                   help="cache folder: embeddings in DIR/embeddings (each text embedded once per model), "
                   "converted BEIR references in DIR/reference")


def _eval_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="build-bench eval",
        description="Evaluate models on a built task folder: nDCG/Recall/MRR@k with bootstrap confidence "
        "intervals over queries, and validity diagnostics (saturation, random baseline, lexical leak, "
        "discriminative power, ranking stability). When TASK_DIR/../report.json exists, the result is stored "
        "in it under \"validity\".")
    p.add_argument("task_dir", help="a task folder written by build-bench (<out>/task)")
    _add_scoring_options(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of tables")
    p.add_argument("--out", metavar="FILE", help="also write the result JSON to FILE")
    return p


def _compare_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="build-bench compare",
        description="Evaluate the same models on a built (synthetic) task and a human-labelled reference, and "
        "report how well the two model rankings agree (Spearman rho, Kendall tau, bootstrap intervals).")
    p.add_argument("synth_task", help="a task folder written by build-bench (<out>/task)")
    p.add_argument("reference", help="a reference task: an MTEB-layout folder or a BEIR folder "
                   "(corpus.jsonl, queries.jsonl, qrels/test.tsv)")
    _add_scoring_options(p)
    p.add_argument("--out", metavar="FILE", help="where to write the result JSON (default: SYNTH_TASK/../compare.json)")
    return p


def _publish_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="build-bench publish",
        description="Publish a task folder as a new version of a dataset repo: one commit tagged vX.Y.Z with the "
        "data, the mteb task module pinned at that tag, and a card with provenance and changelog. Data equal to "
        "the latest version's is not published again; changed data needs --version or --bump. The Hub token is "
        "read from $HF_TOKEN or `hf auth login`, never from the command line.")
    p.add_argument("task_dir", help="a task folder written by build-bench (<out>/task), or a whole run directory "
                   "(<out>): then every task goes to ORG/<TaskName> and a benchmark manifest pinning their versions "
                   "to ORG/<BenchmarkName> (needs --registry)")
    p.add_argument("--to", required=True, metavar="TARGET",
                   help="hf://ORG/NAME (the Hugging Face Hub, or $HF_ENDPOINT) or file://ROOT/ORG/NAME (a local hub "
                   "of bare git repos at ROOT/datasets/ORG/NAME, servable by olah with mirrors-path ROOT); for a run "
                   "directory hf://ORG or file://ROOT/ORG")
    _add_registry_option(p, needed=False)
    version = p.add_mutually_exclusive_group()
    version.add_argument("--version", metavar="X.Y.Z", help="the version to publish; greater than the latest one "
                         "(default for a first publish: 1.0.0)")
    version.add_argument("--bump", choices=["major", "minor", "patch"],
                         help="publish the latest version bumped by one major, minor or patch step")
    p.add_argument("--message", "-m", metavar="M", help="commit message and changelog line (default: Publish vX.Y.Z)")
    return p


def _add_registry_option(p: argparse.ArgumentParser, needed: bool) -> None:
    p.add_argument("--registry", metavar="PATH", default=os.environ.get(REGISTRY_ENV),
                   help="the registry of accepted tasks: a folder, file://ROOT/ORG/NAME or hf://ORG/NAME "
                   f"(default: ${REGISTRY_ENV})" + ("" if needed else "; without one, overlap is not checked"))


def _validate_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="build-bench validate",
        description="Check a task folder (or a .tar/.zip of one) as a community submission: file safety first "
        "(no links, no path traversal, no scripts or pickles, size caps, safe YAML, no HTML injection in the card), "
        "then the MTEB schema, ids, quality rules, language, license, overlap with registered tasks and baseline "
        "sanity. Prints one line per check; exits non-zero when any check fails. Nothing in the folder is run.")
    p.add_argument("task_dir", help="a task folder written by build-bench, or a .tar/.tar.gz/.zip of one")
    _add_registry_option(p, needed=False)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    return p


def _submit_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="build-bench submit",
        description="Validate a task folder and open a pull request with it (refs/pr/N) on its dataset repo; the "
        "PR description summarises the task and the validation report. Nothing is sent when a check fails.")
    p.add_argument("task_dir", help="a task folder written by build-bench")
    p.add_argument("--to", required=True, metavar="REPO", help="hf://ORG/NAME or file://ROOT/ORG/NAME")
    _add_registry_option(p, needed=False)
    return p


def _review_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="build-bench review",
        description="Download a submission's pull request into a private temporary folder (names checked before "
        "any file is read; nothing executed), validate it again against the registry, then merge and tag it "
        "(local hub) or print the merge URL and command (Hugging Face Hub), and add it to the registry.")
    p.add_argument("repo", metavar="REPO", help="hf://ORG/NAME or file://ROOT/ORG/NAME")
    p.add_argument("--pr", type=int, required=True, metavar="N", help="the pull request number (refs/pr/N)")
    _add_registry_option(p, needed=True)
    version = p.add_mutually_exclusive_group()
    version.add_argument("--version", metavar="X.Y.Z", help="the version the accepted task gets (default: 1.0.0 "
                         "for a new repo, else the latest version with --bump minor)")
    version.add_argument("--bump", choices=["major", "minor", "patch"], help="bump the latest version")
    return p


def _list_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="build-bench list",
                                description="List the registry's accepted tasks and benchmarks with their versions.")
    _add_registry_option(p, needed=True)
    return p


def _load_registry(path: Optional[str], needed: bool):
    from .errors import ConfigError
    from .hub.registry import Registry

    if not path:
        if needed:
            raise ConfigError(f"no registry: pass --registry PATH or set ${REGISTRY_ENV}")
        return None
    return Registry.load(path)


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


def _scoring_setup(args, anchor, always_cache: bool):
    """(EmbeddingCache or None, reference cache dir or None, via_mteb) from the shared scoring options.

    Without --cache-dir, the run's own cache (anchor/../cache, the folder `build` embeds into) is used when
    ``always_cache`` or when it exists.
    """
    import importlib.util
    from pathlib import Path

    from .engine.embeddings import EmbeddingCache
    from .errors import ConfigError

    if args.bootstrap < 1:
        raise ConfigError(f"--bootstrap must be at least 1 (got {args.bootstrap})")
    if args.k < 1:
        raise ConfigError(f"--k must be at least 1 (got {args.k})")
    root = Path(args.cache_dir) if args.cache_dir else Path(anchor).resolve().parent / "cache"
    use = bool(args.cache_dir) or always_cache or root.is_dir()
    cache = EmbeddingCache(root / "embeddings") if use else None
    via_mteb = args.via_mteb if args.via_mteb is not None else importlib.util.find_spec("mteb") is not None
    return cache, (root / "reference" if use else None), via_mteb


def _write_result(path, result: dict) -> None:
    from .engine.rundir import atomic_write_json

    atomic_write_json(path, result)


def cmd_eval(argv: list[str]) -> int:
    from pathlib import Path

    from .tasks.validity import evaluate_with_ci, format_ci_table, format_diagnostics

    args = _eval_parser().parse_args(argv)
    _setup_logging(False)
    task_dir = Path(args.task_dir)
    cache, _, via_mteb = _scoring_setup(args, task_dir, always_cache=False)
    try:
        result = evaluate_with_ci(task_dir, args.models, k=args.k, cache=cache, n_boot=args.bootstrap,
                                  seed=args.seed, via_mteb=via_mteb)
    finally:
        if cache is not None:
            cache.close()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['task']}: {result['queries']} queries, {result['corpus']} documents, "
              f"{result['n_boot']} bootstrap resamples (95% intervals)")
        print(format_ci_table(result))
        print(format_diagnostics(result))
    if task_dir.resolve().name == "task":  # a run's retrieval task: its report gets the result
        _update_run_report(task_dir.resolve().parent, "validity", result)
    if args.out:
        _write_result(Path(args.out), result)
    return 0


def cmd_compare(argv: list[str]) -> int:
    from pathlib import Path

    from .errors import InputError
    from .tasks.compare import compare, format_compare
    from .tasks.validity import format_diagnostics

    args = _compare_parser().parse_args(argv)
    _setup_logging(False)
    synth = Path(args.synth_task)
    if not (synth / "task.json").is_file():
        raise InputError(f"{synth} is not a complete buildbench task (no task.json)")
    cache, reference_cache, via_mteb = _scoring_setup(args, synth, always_cache=True)
    try:
        result = compare(synth, Path(args.reference), args.models, k=args.k, n_boot=args.bootstrap, seed=args.seed,
                         cache=cache, via_mteb=via_mteb, reference_cache=reference_cache)
    finally:
        if cache is not None:
            cache.close()
    print(format_compare(result))
    for side in ("synthetic", "reference"):
        print(f"\n{side} diagnostics:")
        print(format_diagnostics(result[side]))
    out = Path(args.out) if args.out else synth.resolve().parent / "compare.json"
    _write_result(out, result)
    print(f"\nwritten: {out}")
    if synth.resolve().name == "task":
        _update_run_report(synth.resolve().parent, "compare", result)
    return 0


def cmd_publish(argv: list[str]) -> int:
    from pathlib import Path

    from .hub.publish import publish_task

    args = _publish_parser().parse_args(argv)
    _setup_logging(False)
    if (Path(args.task_dir) / "benchmark.json").is_file():
        return _publish_run(args)
    result = publish_task(args.task_dir, args.to, version=args.version, bump=args.bump, message=args.message)
    version = result.tag[1:] if result.tag and result.tag.startswith("v") else result.tag
    if result.unchanged:
        print(f"unchanged, {result.tag}: nothing published")
    else:
        print(f"published {result.tag} to {args.to}")
    print(f"version: {version}")
    print(f"tag: {result.tag}")
    print(f"commit: {result.commit}")
    print(f"no-op: {'yes' if result.unchanged else 'no'}")
    print(f"url: {result.url}")
    return 0


def _publish_run(args) -> int:
    """A build's run directory: every task, then the benchmark manifest pinning their versions."""
    from pathlib import Path

    from .errors import ConfigError
    from .hub.manifest import publish_run
    from .hub.registry import Registry

    if not args.registry:
        raise ConfigError(f"publishing a run's benchmark needs --registry (or ${REGISTRY_ENV}): its manifest pins "
                          "registered task versions")
    registry = Registry.load(args.registry)
    out = publish_run(Path(args.task_dir), args.to, registry, version=args.version, bump=args.bump)
    for repo, result in out.tasks:
        print(f"{repo}: {'unchanged' if result.unchanged else 'published'} {result.tag} ({result.commit[:12]})")
    state = "unchanged" if out.benchmark is None else f"published ({out.benchmark.commit[:12]})"
    print(f"benchmark {out.benchmark_repo}: {state} {out.manifest.version}: "
          + ", ".join(str(t) for t in out.manifest.tasks))
    return 0


def _update_run_report(run_dir, key: str, result: dict) -> None:
    """Store a result under ``key`` in a run's report.json and re-render its report.html."""
    from .errors import InputError, MissingDependencyError

    report = run_dir / "report.json"
    if not report.exists():
        return
    try:
        merged = json.loads(report.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{report} is not valid JSON ({exc.msg}); {key} not stored") from None
    merged[key] = result
    _write_result(report, merged)
    log = logging.getLogger(__name__)
    log.info("%s stored in %s", key, report)
    try:
        from .tasks.report_html import render_report

        log.info("report: %s", render_report(run_dir, merged))
    except MissingDependencyError as exc:
        log.warning("no report.html: %s", exc)


def cmd_validate(argv: list[str]) -> int:
    from pathlib import Path

    from .errors import QualityError
    from .hub.validate import format_report, validate_submission

    args = _validate_parser().parse_args(argv)
    _setup_logging(False)
    report = validate_submission(Path(args.task_dir), _load_registry(args.registry, needed=False))
    print(json.dumps(report.to_dict(), indent=2) if args.json else format_report(report))
    return 0 if report.ok else QualityError.exit_code


def cmd_submit(argv: list[str]) -> int:
    from pathlib import Path

    from .errors import QualityError
    from .hub.submit import submit_task
    from .hub.validate import format_report

    args = _submit_parser().parse_args(argv)
    _setup_logging(False)
    result = submit_task(Path(args.task_dir), args.to, registry=_load_registry(args.registry, needed=False))
    print(format_report(result.report))
    if not result.ok:
        print("not submitted: fix the failed checks and submit again")
        return QualityError.exit_code
    print(f"pull request: {result.pr.pr_ref} ({result.pr.url})")
    print(f"commit: {result.pr.commit}")
    return 0


def cmd_review(argv: list[str]) -> int:
    from .errors import QualityError
    from .hub.submit import review_submission
    from .hub.validate import format_report

    args = _review_parser().parse_args(argv)
    _setup_logging(False)
    registry = _load_registry(args.registry, needed=True)
    result = review_submission(args.repo, args.pr, registry=registry, version=args.version, bump=args.bump)
    print(format_report(result.report))
    if not result.accepted:
        print(f"pull request #{args.pr} refused: nothing merged, the registry is unchanged")
        return QualityError.exit_code
    if result.merged_commit:
        print(f"merged pull request #{args.pr} into main: {result.merged_commit}, tagged {result.version}")
    else:
        print(f"accepted pull request #{args.pr} as {result.version}; a maintainer merges it on the Hub:")
        for line in result.merge_instructions:
            print(f"  {line}")
    print(f"registered {result.entry.name} {result.entry.version} in {registry.source}")
    return 0


def cmd_list(argv: list[str]) -> int:
    from .hub.registry import format_registry

    args = _list_parser().parse_args(argv)
    print(format_registry(_load_registry(args.registry, needed=True)))
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    cmd = argv[0] if argv and argv[0] in SUBCOMMANDS else "build"
    if argv and argv[0] in SUBCOMMANDS:
        argv = argv[1:]
    try:
        return {"build": cmd_build, "stages": cmd_stages, "eval": cmd_eval, "compare": cmd_compare,
                "publish": cmd_publish, "validate": cmd_validate, "submit": cmd_submit, "review": cmd_review,
                "list": cmd_list}[cmd](argv)
    except BuildBenchError as exc:
        print(f"build-bench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("build-bench: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
