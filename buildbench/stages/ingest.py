"""ingest: read documents from files, folders, globs or the Hub; skip unreadable inputs."""

from __future__ import annotations

import logging
import os
import socket
from urllib.parse import urlparse

from ..builders import hub_address, read_documents, read_hub
from ..config import BuildConfig, sample_dir
from ..domain_pack import HubSource
from ..engine.stage import StageContext, StageResult
from ..errors import ConfigError, InputError
from ..records import Document, Drop, to_table

log = logging.getLogger(__name__)

CONFIG_KEYS = ("docs", "max_docs", "domain.reader", "domain.sources", "domain.name")


def resolve_sources(config: BuildConfig):
    """The inputs of a run: --docs, else the pack's Hub source when reachable, else its bundled sample.

    Returns a list of specs for read_documents, or the pack's HubSource (which names its own split and fields).
    """
    if config.docs:
        return list(config.docs)
    pack = config.domain
    if pack.sources.hub and hub_reachable():
        return pack.sources.hub
    sample = sample_dir(pack)
    if sample is None or not sample.exists():
        raise ConfigError(f"domain '{pack.name}' has no --docs, no reachable Hub source and no bundled sample")
    log.warning("No --docs given and the Hub is not reachable: building from the bundled sample corpus "
                "(%s), the team's own example documents.", sample)
    return [str(sample)]


def hub_reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() not in ("0", "", "false", "no"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = url.port or (80 if url.scheme == "http" else 443)
    try:
        socket.create_connection((url.hostname or "huggingface.co", port), timeout=timeout).close()
        return True
    except OSError:
        return False


def run(ctx: StageContext) -> StageResult:
    cfg = ctx.config
    sources = resolve_sources(cfg)
    if isinstance(sources, HubSource):
        result = read_hub(sources, cfg.domain.reader, max_docs=cfg.max_docs or sources.max_docs, stage=ctx.stage)
        specs = [hub_address(sources)]
    else:
        specs = sources
        result = read_documents(specs, cfg.domain.reader, max_docs=cfg.max_docs, stage=ctx.stage)
    if not result.documents:
        # No report is written when the build stops here, so the error itself says what was skipped and why.
        raise InputError(f"no readable documents in {', '.join(specs)}" + skipped_summary(result.skipped))
    for d in result.skipped:
        log.warning("skipped %s: %s (%s)", d.item_id, d.reason, d.detail)
    for w in result.warnings:
        log.info("note %s: %s", w.item_id, w.detail)
    ctx.rundir.write("ingest_warnings", to_table(result.warnings, Drop))
    return StageResult(
        outputs={"documents": to_table(result.documents, Document)},
        drops=result.skipped,
        stats={"sources": len(specs), "documents": len(result.documents), "skipped_inputs": len(result.skipped),
               "warnings": len(result.warnings),
               "bundled_sample": int(not cfg.docs and not isinstance(sources, HubSource))},
    )


def skipped_summary(skipped: list[Drop], show: int = 5) -> str:
    """The first few skipped inputs with their reasons, and how many more, on one line."""
    if not skipped:
        return ""
    items = [f"{d.item_id}: {d.reason}" + (f" ({d.detail})" if d.detail else "") for d in skipped[:show]]
    more = f"; and {len(skipped) - show} more" if len(skipped) > show else ""
    text = f": {len(skipped)} input{'s' if len(skipped) != 1 else ''} skipped: " + "; ".join(items) + more
    return " ".join(text.split())  # details from parsers may hold newlines
