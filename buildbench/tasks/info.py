"""TaskInfo: what a built retrieval task is, as written to ``task.json`` and the dataset card."""

from __future__ import annotations

import re
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, field_validator

from ..errors import ConfigError

# ISO 639-1 -> the ISO 639-3 + ISO 15924 code MTEB writes in ``eval_langs``. Only the script a language is
# almost always written in; a task in another script sets ``eval_lang`` explicitly.
EVAL_LANGS = {
    "ar": "ara-Arab",
    "bg": "bul-Cyrl",
    "bn": "ben-Beng",
    "ca": "cat-Latn",
    "cs": "ces-Latn",
    "da": "dan-Latn",
    "de": "deu-Latn",
    "el": "ell-Grek",
    "en": "eng-Latn",
    "es": "spa-Latn",
    "et": "est-Latn",
    "fa": "fas-Arab",
    "fi": "fin-Latn",
    "fr": "fra-Latn",
    "he": "heb-Hebr",
    "hi": "hin-Deva",
    "hr": "hrv-Latn",
    "hu": "hun-Latn",
    "id": "ind-Latn",
    "it": "ita-Latn",
    "ja": "jpn-Jpan",
    "ko": "kor-Hang",
    "lt": "lit-Latn",
    "lv": "lav-Latn",
    "nb": "nob-Latn",
    "nl": "nld-Latn",
    "no": "nor-Latn",
    "pl": "pol-Latn",
    "pt": "por-Latn",
    "ro": "ron-Latn",
    "ru": "rus-Cyrl",
    "sk": "slk-Latn",
    "sl": "slv-Latn",
    "sr": "srp-Cyrl",
    "sv": "swe-Latn",
    "sw": "swa-Latn",
    "ta": "tam-Taml",
    "th": "tha-Thai",
    "tr": "tur-Latn",
    "uk": "ukr-Cyrl",
    "ur": "urd-Arab",
    "vi": "vie-Latn",
    "zh": "zho-Hans",
}

_EVAL_LANG_RE = re.compile(r"^[a-z]{3}-[A-Z][a-z]{3}$")
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]*$")


class TaskInfo(BaseModel):
    """Descriptive fields of one retrieval task. Counts are not here: they are measured when the task is written."""

    model_config = ConfigDict(extra="forbid")

    name: str  # becomes the MTEB task name, so no spaces
    description: str
    domain: str
    language: str = "en"  # ISO 639-1
    eval_lang: Optional[str] = None  # e.g. "eng-Latn"; derived from `language` when not given
    license: str = "cc-by-4.0"
    revision: str = "local"  # placeholder until the task is published at a hub revision
    reference: Optional[str] = None  # a URL describing the source documents
    provenance: dict[str, Any] = {}  # how the task was built: generator model, filters, run config hash, ...

    @field_validator("name")
    @classmethod
    def _name_is_identifier(cls, v: str) -> str:
        if not _NAME_RE.match(v):
            raise ValueError(f"task name '{v}' must start with a letter and hold only letters, digits, '_', '-', '.'")
        return v

    @field_validator("eval_lang")
    @classmethod
    def _eval_lang_shape(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not _EVAL_LANG_RE.match(v):
            raise ValueError(f"eval_lang '{v}' must look like 'eng-Latn' (ISO 639-3 + ISO 15924)")
        return v

    def mteb_lang(self) -> str:
        """The language as MTEB writes it (``eng-Latn``)."""
        if self.eval_lang:
            return self.eval_lang
        code = self.language.lower()
        if _EVAL_LANG_RE.match(self.language):
            return self.language
        if code not in EVAL_LANGS:
            raise ConfigError(
                f"language '{self.language}' has no default MTEB code; set eval_lang (e.g. 'eng-Latn') on the task"
            )
        return EVAL_LANGS[code]
