"""The command line, in mteb's style: one parser with a subcommand per command, each a thin call into the
library (``set_defaults(func=...)``). ``build`` is the default command: ``build-bench --domain finance`` is
``build-bench build --domain finance``. ``build-bench --help`` lists the commands; ``build-bench COMMAND --help``
documents each one's options. --registry defaults to $BUILDBENCH_REGISTRY.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Optional

from .errors import BuildBenchError, ConfigError, QualityError

REGISTRY_ENV = "BUILDBENCH_REGISTRY"
DEFAULT_EVAL_MODELS = ["random", "bm25", "static", "minilm", "mpnet", "e5-small"]
BUILD_OPTIONS = "build options"  # the group of build's options, also shown by `build-bench --help`


def _command(sub, name: str, func, summary: str, description: str, *parents) -> argparse.ArgumentParser:
    """A subcommand: ``summary`` is its line in ``build-bench --help``, ``func(args)`` runs it."""
    p = sub.add_parser(name, help=summary, description=description, parents=list(parents))
    p.set_defaults(func=func)
    return p


# -- build and stages

def _add_build(sub) -> argparse.ArgumentParser:
    p = _command(sub, "build", run_build, "build a benchmark from domain documents (the default command)",
                 "Build a text-embedding retrieval benchmark (MTEB v2 layout) from domain documents. Rerunning the "
                 "same command resumes and reuses finished stages.")
    g = p.add_argument_group(BUILD_OPTIONS)
    g.add_argument("--domain", required=True,
                   help="a bundled domain pack name (finance) or the path of your own pack (.yaml)")
    g.add_argument("--docs", nargs="+", action="extend", metavar="PATH",
                   help="input files, folders, globs or hf://datasets/NAME[:config][@revision]; repeatable. "
                   "Default: the pack's Hub dataset when reachable, else its bundled sample corpus")
    g.add_argument("--out", metavar="DIR", help="run directory (default: a folder named after the domain), or an "
                   "fsspec URL (s3://bucket/run, gs://..., file://...): worked on in a local copy, pushed after "
                   "every shard and stage")
    g.add_argument("--max-docs", type=int, metavar="N", help="read at most N documents")
    g.add_argument("--queries-per-chunk", type=int, metavar="K",
                   help="queries to write per chunk, each with its own persona and style (default 2)")
    g.add_argument("--max-queries", type=int, metavar="N",
                   help="query budget: write queries for a seeded sample of chunks only, drawn from those with a "
                   "salient fact, and in a document that names no one, one that states a figure (the rest of the "
                   "corpus stays as distractors). Default: every chunk")
    g.add_argument("--seed", type=int, metavar="S", help="seed for sampling and generation (default 0)")
    g.add_argument("--generator", choices=["auto", "local", "openai", "vllm"],
                   help="LLM backend of the query writer. auto (default): vllm with a CUDA GPU, else openai when "
                   "--base-url is given, else local (llama.cpp on the CPU)")
    g.add_argument("--model", metavar="NAME",
                   help="the query writer's model: for local gemma3-270m (default), smollm2-135m-instruct or a "
                   ".gguf path; for openai/vllm the served model name")
    g.add_argument("--base-url", metavar="URL", action="append",
                   help="an OpenAI-compatible server's /v1 address; the API key is read from $OPENAI_API_KEY "
                   "(or the variable the pack names in generator.api_key_env), never from the command line. "
                   "Repeat the option or separate addresses with commas for several servers of the same model: "
                   "each request goes to the one with the fewest in flight, and one that keeps failing is set "
                   "aside for a while")
    g.add_argument("--corpus-size", type=int, metavar="N",
                   help="target corpus size of the downsampled task (gold documents plus each query's pooled "
                   "top candidates, filled at random up to N). Default: no random fill")
    g.add_argument("--judge", action="store_true",
                   help="run the LLM judge (calibrated on control pairs first; see domain pack `repair`)")
    g.add_argument("--until", metavar="STAGE", help="stop after this stage (see `build-bench stages`)")
    g.add_argument("--engine", choices=["local", "ray"],
                   help="where map stages run: local (default; one shard after another in this process) or ray (a "
                   "pool of Ray actors over the shards; pip install 'buildbench[ray]'). The output is the same")
    g.add_argument("--ray-address", metavar="ADDR",
                   help="a running Ray cluster for --engine ray (auto, ray://HOST:10001); default: start one here")
    g.add_argument("--workers", type=int, metavar="N", help="Ray actors per map stage for --engine ray (default 2)")
    g.add_argument("--gpus-per-worker", type=float, metavar="G",
                   help="GPUs each Ray actor of an LLM stage asks for (1 with --generator vllm on a GPU cluster)")
    g.add_argument("--no-progress", action="store_true", help="no progress bars")
    g.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def run_build(args) -> int:
    from .config import make_config
    from .engine.remote import local_root
    from .engine.rundir import RunDir
    from .pipeline import build
    from .report.summary import format_summary

    config = make_config(args.domain, out=args.out, docs=args.docs, max_docs=args.max_docs,
                         queries_per_chunk=args.queries_per_chunk, max_queries=args.max_queries, seed=args.seed,
                         generator={"backend": args.generator, "model": args.model, "base_url": args.base_url},
                         pack_overrides={"downsample.corpus_size": args.corpus_size,
                                         "recipes.judge": True if args.judge else None},
                         engine={"kind": args.engine, "address": args.ray_address, "workers": args.workers,
                                 "gpus_per_worker": args.gpus_per_worker})
    report = build(config, until=args.until, progress=not args.no_progress)
    print(format_summary(report, RunDir(local_root(config.out), claim=False)))
    return 0


def _add_stages(sub) -> None:
    _command(sub, "stages", run_stages, "list the pipeline stages with their inputs and outputs",
             "List the stages of a build in order: kind, inputs, outputs, whether it calls the LLM.")


def run_stages(args) -> int:
    from .pipeline import STAGES

    for s in STAGES:
        llm = " [LLM]" if s.needs_llm else ""
        print(f"{s.name:<18} {s.kind:<6} {', '.join(s.inputs) or '-':<22} -> {', '.join(s.outputs):<16}{llm}  "
              f"{s.description}")
    return 0


# -- eval and compare

def _scoring_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--models", nargs="+", default=list(DEFAULT_EVAL_MODELS),
                   help="bm25, random, static, minilm, mpnet, e5-small, or a sentence-transformers model path "
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
    p.add_argument("--overwrite", action="store_true",
                   help="replace the result file even when it is not a result build-bench wrote")
    return p


def _add_eval(sub) -> None:
    p = _command(sub, "eval", run_eval, "score models on a built task with bootstrap CIs and validity diagnostics",
                 "Evaluate models on a built task folder: nDCG/Recall/MRR@k with bootstrap confidence intervals "
                 "over queries, and validity diagnostics (saturation, random baseline, lexical leak, "
                 "discriminative power, ranking stability). When TASK_DIR/../report.json is its run's report, the "
                 "result is stored in it under \"validity\".", _scoring_options())
    p.add_argument("task_dir", help="a task folder written by build-bench (<out>/task)")
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of tables")
    p.add_argument("--out", metavar="FILE", help="also write the result JSON to FILE")


def run_eval(args) -> int:
    from .engine.rundir import atomic_write_json
    from .evaluation.validity import evaluate_with_ci, format_ci_table, format_diagnostics
    from .evaluation.workspace import check_result_target, scoring_setup
    from .report import update_run_report

    if args.out:
        check_result_target(Path(args.out), args.overwrite)
    with scoring_setup(args.task_dir, k=args.k, n_boot=args.bootstrap, cache_dir=args.cache_dir,
                       via_mteb=args.via_mteb) as scoring:
        result = evaluate_with_ci(Path(args.task_dir), args.models, k=args.k, cache=scoring.embeddings,
                                  n_boot=args.bootstrap, seed=args.seed, via_mteb=scoring.via_mteb)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['task']}: {result['queries']} queries, {result['corpus']} documents, "
              f"{result['n_boot']} bootstrap resamples (95% intervals)")
        print(format_ci_table(result))
        print(format_diagnostics(result))
    update_run_report(Path(args.task_dir), "validity", result)  # when it is a run's retrieval task
    if args.out:
        atomic_write_json(Path(args.out), result)
    return 0


def _add_compare(sub) -> None:
    p = _command(sub, "compare", run_compare, "check that a built task ranks models as a human-labelled reference does",
                 "Evaluate the same models on a built (synthetic) task and a human-labelled reference, and report "
                 "how well the two model rankings agree (Spearman rho, Kendall tau, bootstrap intervals).",
                 _scoring_options())
    p.add_argument("synth_task", help="a task folder written by build-bench (<out>/task)")
    p.add_argument("reference", help="a reference task: an MTEB-layout folder or a BEIR folder "
                   "(corpus.jsonl, queries.jsonl, qrels/test.tsv)")
    p.add_argument("--out", metavar="FILE", help="where to write the result JSON (default: SYNTH_TASK/../compare.json)")


def run_compare(args) -> int:
    from .engine.rundir import atomic_write_json
    from .errors import InputError
    from .evaluation.compare import compare, format_compare
    from .evaluation.validity import format_diagnostics
    from .evaluation.workspace import check_result_target, default_compare_path, scoring_setup
    from .report import update_run_report

    synth = Path(args.synth_task)
    if not (synth / "task.json").is_file():
        raise InputError(f"{synth} is not a complete buildbench task (no task.json)")
    out = Path(args.out) if args.out else default_compare_path(synth)
    check_result_target(out, args.overwrite)
    with scoring_setup(synth, k=args.k, n_boot=args.bootstrap, cache_dir=args.cache_dir, always_cache=True,
                       via_mteb=args.via_mteb) as scoring:
        result = compare(synth, Path(args.reference), args.models, k=args.k, n_boot=args.bootstrap, seed=args.seed,
                         cache=scoring.embeddings, via_mteb=scoring.via_mteb, reference_cache=scoring.reference_cache)
    print(format_compare(result))
    for side in ("synthetic", "reference"):
        print(f"\n{side} diagnostics:")
        print(format_diagnostics(result[side]))
    atomic_write_json(out, result)
    print(f"\nwritten: {out}")
    update_run_report(synth, "compare", result)  # when it is a run's retrieval task
    return 0


# -- export

def _add_export(sub) -> None:
    from .export.options import DESCRIPTION, SUMMARY, add_options, run

    add_options(_command(sub, "export", run, SUMMARY, DESCRIPTION), REGISTRY_ENV)


# -- the hub: publish, validate, submit, review, list

def _registry(needed: bool) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--registry", metavar="PATH", default=os.environ.get(REGISTRY_ENV),
                   help="the registry of accepted tasks: a folder, file://ROOT/ORG/NAME or hf://ORG/NAME "
                   f"(default: ${REGISTRY_ENV})" + ("" if needed else "; without one, overlap is not checked"))
    return p


def _load_registry(path: Optional[str], needed: bool):
    from .hub.registry import Registry

    if not path:
        if needed:
            raise ConfigError(f"no registry: pass --registry PATH or set ${REGISTRY_ENV}")
        return None
    return Registry.load(path)


def _version_options(p: argparse.ArgumentParser, version_help: str, bump_help: str) -> None:
    version = p.add_mutually_exclusive_group()
    version.add_argument("--version", metavar="X.Y.Z", help=version_help)
    version.add_argument("--bump", choices=["major", "minor", "patch"], help=bump_help)


def _add_publish(sub) -> None:
    p = _command(sub, "publish", run_publish, "publish a task folder, or a run's tasks and benchmark, as a new version",
                 "Publish a task folder as a new version of a dataset repo: one commit tagged vX.Y.Z with the data, "
                 "the mteb task module pinned at that tag, and a card with provenance and changelog. Data equal to "
                 "the latest version's is not published again; changed data needs --version or --bump. The Hub "
                 "token is read from $HF_TOKEN or `hf auth login`, never from the command line.", _registry(False))
    p.add_argument("task_dir", help="a task folder written by build-bench (<out>/task), or a whole run directory "
                   "(<out>): then every task goes to ORG/<TaskName> and a benchmark manifest pinning their versions "
                   "to ORG/<BenchmarkName> (needs --registry)")
    p.add_argument("--to", required=True, metavar="TARGET",
                   help="hf://ORG/NAME (the Hugging Face Hub, or $HF_ENDPOINT) or file://ROOT/ORG/NAME (a local hub "
                   "of bare git repos at ROOT/datasets/ORG/NAME, servable by olah with mirrors-path ROOT); for a run "
                   "directory hf://ORG or file://ROOT/ORG")
    _version_options(p, "the version to publish; greater than the latest one (default for a first publish: 1.0.0)",
                     "publish the latest version bumped by one major, minor or patch step")
    p.add_argument("--message", "-m", metavar="M", help="commit message and changelog line (default: Publish vX.Y.Z)")


def run_publish(args) -> int:
    from .hub.publish import RunPublishResult, publish

    result = publish(Path(args.task_dir), args.to, registry=args.registry, version=args.version, bump=args.bump,
                     message=args.message)
    if isinstance(result, RunPublishResult):
        for repo, task in result.tasks:
            print(f"{repo}: {'unchanged' if task.unchanged else 'published'} {task.tag} ({task.commit[:12]})")
        state = "unchanged" if result.benchmark is None else f"published ({result.benchmark.commit[:12]})"
        print(f"benchmark {result.benchmark_repo}: {state} {result.manifest.version}: "
              + ", ".join(str(t) for t in result.manifest.tasks))
        return 0
    print(f"unchanged, {result.tag}: nothing published" if result.unchanged else f"published {result.tag} to {args.to}")
    print(f"version: {result.tag[1:] if result.tag and result.tag.startswith('v') else result.tag}")
    print(f"tag: {result.tag}\ncommit: {result.commit}")
    print(f"no-op: {'yes' if result.unchanged else 'no'}\nurl: {result.url}")
    return 0


def _add_validate(sub) -> None:
    p = _command(sub, "validate", run_validate, "check a task folder or archive as a community submission",
                 "Check a task folder (or a .tar/.zip of one) as a community submission: file safety first (no "
                 "links, no path traversal, no scripts or pickles, size caps, safe YAML, no HTML injection in the "
                 "card), then the MTEB schema, ids, quality rules, language, license, overlap with registered tasks "
                 "and baseline sanity. Prints one line per check; exits non-zero when any check fails. Nothing in "
                 "the folder is run.", _registry(False))
    p.add_argument("task_dir", help="a task folder written by build-bench, or a .tar/.tar.gz/.zip of one")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def run_validate(args) -> int:
    from .hub.validate import format_report, validate_submission

    report = validate_submission(Path(args.task_dir), _load_registry(args.registry, needed=False))
    print(json.dumps(report.to_dict(), indent=2) if args.json else format_report(report))
    return 0 if report.ok else QualityError.exit_code


def _add_submit(sub) -> None:
    p = _command(sub, "submit", run_submit, "validate a task folder and open a pull request with it",
                 "Validate a task folder and open a pull request with it (refs/pr/N) on its dataset repo; the PR "
                 "description summarises the task and the validation report. Nothing is sent when a check fails.",
                 _registry(False))
    p.add_argument("task_dir", help="a task folder written by build-bench")
    p.add_argument("--to", required=True, metavar="REPO", help="hf://ORG/NAME or file://ROOT/ORG/NAME")


def run_submit(args) -> int:
    from .hub.submit import submit_task
    from .hub.validate import format_report

    result = submit_task(Path(args.task_dir), args.to, registry=_load_registry(args.registry, needed=False))
    print(format_report(result.report))
    if not result.ok:
        print("not submitted: fix the failed checks and submit again")
        return QualityError.exit_code
    print(f"pull request: {result.pr.pr_ref} ({result.pr.url})\ncommit: {result.pr.commit}")
    return 0


def _add_review(sub) -> None:
    p = _command(sub, "review", run_review, "re-validate a submission's pull request, then merge, tag and register it",
                 "Download a submission's pull request into a private temporary folder (names checked before any "
                 "file is read; links refused; nothing executed), validate it again against the registry, then "
                 "merge and tag it and add it to the registry, undoing those writes if one fails (the Hub cannot "
                 "unmerge).", _registry(True))
    p.add_argument("repo", metavar="REPO", help="hf://ORG/NAME or file://ROOT/ORG/NAME")
    p.add_argument("--pr", type=int, required=True, metavar="N", help="the pull request number (refs/pr/N)")
    _version_options(p, "the version the accepted task gets (default: 1.0.0 for a new repo, else the latest "
                     "version with --bump minor)", "bump the latest version")


def run_review(args) -> int:
    from .hub.submit import review_submission
    from .hub.validate import format_report

    registry = _load_registry(args.registry, needed=True)
    result = review_submission(args.repo, args.pr, registry=registry, version=args.version, bump=args.bump)
    print(format_report(result.report))
    if not result.accepted:
        print(f"pull request #{args.pr} refused: nothing merged, the registry is unchanged")
        return QualityError.exit_code
    print(f"merged pull request #{args.pr} into main: {result.merged_commit}, tagged {result.version}")
    print(f"registered {result.entry.name} {result.entry.version} in {registry.source}")
    return 0


def _add_list(sub) -> None:
    _command(sub, "list", run_list, "list the registry's tasks and benchmarks",
             "List the registry's accepted tasks and benchmarks with their versions.", _registry(True))


def run_list(args) -> int:
    from .hub.registry import format_registry

    print(format_registry(_load_registry(args.registry, needed=True)))
    return 0


# -- people's labels

LABEL_FORMATS = ("auto", "jsonl", "csv", "argilla", "label-studio")


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port (0-65535)")
    return int(text)


def _add_label(sub) -> None:
    p = _command(sub, "label", run_label, "review a build's queries in a local page and label them",
                 "Serve a local review page (127.0.0.1) that shows a run's queries one at a time with their "
                 "positive passages, closest mined candidates and provenance; a reviewer marks each as good, vague, "
                 "wrong or missed positive, from the keyboard (? lists the keys). Every label is saved at once to "
                 "RUN_DIR/labels/labels.jsonl. With --import, add labels made elsewhere instead.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by build-bench")
    p.add_argument("--reviewer", metavar="NAME",
                   help="whose labels these are; each reviewer sees and continues their own (default: $USER, "
                   "else 'reviewer'); letters, digits and _.@-")
    p.add_argument("--sample", type=int, metavar="N",
                   help="review N queries drawn stratified by persona, style, difficulty and recipe (default: all)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the sample (default 0)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; any other is warned about)")
    p.add_argument("--port", type=_port, default=0, help="port to listen on (default 0: a free one)")
    p.add_argument("--no-browser", action="store_true", help="print the page's address; do not open a browser")
    p.add_argument("--import", dest="import_file", metavar="FILE",
                   help="import labels from FILE into the run instead of serving the page")
    p.add_argument("--format", choices=LABEL_FORMATS, default="auto",
                   help="the format of the --import file (default auto: from its name and content)")


def run_label(args) -> int:
    from .labels.server import reviewer_name

    if args.import_file:
        from .labels.formats import import_labels

        result = import_labels(Path(args.run_dir), Path(args.import_file), fmt=args.format,
                               reviewer=reviewer_name(args.reviewer) if args.reviewer else None)
        print(result.summary())
        return 0
    from .labels.queue import review_items, stratified_sample
    from .labels.server import serve

    reviewer = reviewer_name(args.reviewer)
    if args.sample is not None and args.sample < 1:
        raise ConfigError(f"--sample {args.sample}: give a number of queries of at least 1")
    items = review_items(Path(args.run_dir))
    if args.sample is not None:
        items = stratified_sample(items, args.sample, args.seed)
    serve(Path(args.run_dir), items, reviewer, host=args.host, port=args.port,
          announce=lambda line: print(line, flush=True), open_browser=not args.no_browser)
    return 0


# -- the parser and main

COMMANDS = (_add_build, _add_stages, _add_eval, _add_compare, _add_export, _add_publish, _add_validate, _add_submit,
            _add_review, _add_list, _add_label)  # in the order `build-bench --help` lists them; build first, the default


class _Parser(argparse.ArgumentParser):
    """The top parser: its help ends with the options of the default command, build."""

    default_command: Optional[argparse.ArgumentParser] = None

    def format_help(self) -> str:
        options = self.default_command.format_help().split(f"\n{BUILD_OPTIONS}:\n", 1)[1]
        return (f"{super().format_help()}\n{BUILD_OPTIONS} (without a command; `build-bench build --help` shows "
                f"them too):\n{options}")


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="build-bench", description="Build a text-embedding retrieval benchmark (MTEB v2 layout) "
                     "from domain documents, evaluate it, publish it and review submissions. Without a command, "
                     "runs `build`: `build-bench --domain finance` is `build-bench build --domain finance`.")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=argparse.ArgumentParser)
    parser.default_command = [add(sub) for add in COMMANDS][0]
    return parser


def _setup_logging(verbose: bool) -> None:
    from rich.console import Console
    from rich.logging import RichHandler

    # Logs go to stderr; stdout carries only the summary and the score table.
    handler = RichHandler(console=Console(stderr=True), show_path=False, rich_tracebacks=verbose)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s",
                        handlers=[handler], force=True)
    for noisy in ("httpx", "httpx2", "urllib3", "datasets", "huggingface_hub", "sentence_transformers", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _error(message: object) -> None:
    from .hub.sanitize import clean_line

    # Messages quote submitted files and configured text: no escape sequence or control reaches the terminal.
    print(f"build-bench: error: {clean_line(str(message), None)}", file=sys.stderr)


def main(argv: Optional[list[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # No command means build. A first word that is no command is refused by argparse (exit 2).
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv.insert(0, "build")
    args = make_parser().parse_args(argv)
    try:
        _setup_logging(getattr(args, "verbose", False))
        return args.func(args)
    except BuildBenchError as exc:
        _error(exc)
        return exc.exit_code
    except OSError as exc:
        # A folder or file the system refuses (read-only, full disk, gone): one line, not a traceback.
        _error(f"{exc.filename}: {exc.strerror or exc}" if exc.filename else exc.strerror or exc)
        return 1
    except KeyboardInterrupt:
        print("build-bench: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
