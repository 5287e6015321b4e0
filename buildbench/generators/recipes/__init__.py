"""Prompt recipes. Each builds GenerationRequests and parses GenerationResults into typed records;
none of them knows which backend runs it."""

from .judge import JUDGEMENT_SCHEMA, QUERY_CHECK_SCHEMA, Judgement, JudgePair, QueryCheck, RelevanceJudge
from .negatives import SYNTHETIC_PASSAGE_SCHEMA, HardNegativeRecipe, SyntheticPassage, negative_id
from .persona import ParsedQuery, PersonaQueryRecipe, clean_query, plan_queries
from .schemas import JudgeOut, MultiHopOut, NegativeOut, QAOut, SummaryOut, schema_json
from .structured import (
    StructuredOutcome,
    StructuredRecipe,
    extract_json,
    generate_structured,
    parse_structured,
)
from .templates import derive_seed, language_name, template
from .yourbench import DocumentSummary, YourBenchRecipe, citation_support, plan_multihop

__all__ = [
    "ParsedQuery", "PersonaQueryRecipe", "clean_query", "derive_seed", "plan_queries", "template",
    # structured (JSON) recipes
    "StructuredOutcome", "StructuredRecipe", "extract_json", "generate_structured", "language_name",
    "parse_structured", "schema_json",
    "SummaryOut", "QAOut", "MultiHopOut", "NegativeOut", "JudgeOut",
    "YourBenchRecipe", "DocumentSummary", "plan_multihop", "citation_support",
    "HardNegativeRecipe", "SyntheticPassage", "SYNTHETIC_PASSAGE_SCHEMA", "negative_id",
    "RelevanceJudge", "JudgePair", "Judgement", "JUDGEMENT_SCHEMA", "QueryCheck", "QUERY_CHECK_SCHEMA",
]
