"""Prompt recipes. Each builds GenerationRequests and parses GenerationResults into typed records;
none of them knows which backend runs it."""

from .persona import ParsedQuery, PersonaQueryRecipe, clean_query, derive_seed, plan_queries
from .templates import template

__all__ = ["ParsedQuery", "PersonaQueryRecipe", "clean_query", "derive_seed", "plan_queries", "template"]
