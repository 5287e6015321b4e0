"""Hub datasets as a source: ``hf://datasets/NAME[:config][@revision]`` addresses, streamed into documents."""

from __future__ import annotations

import os
import re
from typing import Optional, Union

from ..domain_pack import HubSource, ReaderConfig
from ..errors import InputError
from .documents import Collector, IngestResult, RecordFields, one_line, record_document

HUB_PREFIX = "hf://datasets/"
_HUB_ADDRESS = re.compile(r"^hf://datasets/(?P<name>[^:@\s]+)(?::(?P<config>[^:@\s]+))?(?:@(?P<revision>\S+))?$")


def read_hub(source: Union[str, HubSource], cfg: ReaderConfig, max_docs: Optional[int] = None, *,
             stage: str) -> IngestResult:
    """Stream one Hub dataset into documents.

    ``source`` is an address ``hf://datasets/NAME[:config][@revision]`` (split ``train``, field names from
    ``cfg``) or a domain pack's ``HubSource``, whose split and field names win over ``cfg`` where it sets them.
    ``stage`` names the stage that reads, for the skips' ``Drop.stage``.

    Raises:
        InputError: the dataset cannot be streamed (offline, unknown name, no such split or text field),
            with a one-line message naming the dataset.
    """
    sink = Collector(max_docs, stage)
    fields = RecordFields.from_config(cfg)
    if isinstance(source, HubSource):
        name, config, revision, split = source.dataset, source.config, source.revision, source.split
        fields = RecordFields(source.id_field or fields.id, source.title_field or fields.title, source.text_field)
        address = hub_address(source)
    else:
        name, config, revision = parse_hub_address(source)
        split, address = "train", source
    read_hub_into(sink, address, name, config, revision, split, fields)
    return sink.result


def hub_address(source: HubSource) -> str:
    """The ``hf://`` address of a pack's Hub source, as used in ``Document.source``."""
    address = HUB_PREFIX + source.dataset
    if source.config:
        address += f":{source.config}"
    if source.revision:
        address += f"@{source.revision}"
    return address


def parse_hub_address(address: str) -> tuple[str, Optional[str], Optional[str]]:
    """(name, config, revision) of an ``hf://datasets/`` address; InputError when it is not one."""
    m = _HUB_ADDRESS.match(address)
    if not m:
        raise InputError(f"'{address}' is not a Hub dataset address; expected hf://datasets/NAME[:config][@revision]")
    return m["name"], m["config"], m["revision"]


def read_hub_into(sink: Collector, address: str, name: str, config: Optional[str], revision: Optional[str],
                  split: str, fields: RecordFields) -> None:
    """Stream records from the Hub into ``sink`` until the dataset ends or max_docs is reached."""
    import datasets

    def fail(exc: BaseException) -> InputError:
        return InputError(_hub_error(name, exc))

    try:
        stream = datasets.load_dataset(name, config, split=split, revision=revision, streaming=True)
        rows = iter(stream)
    except Exception as exc:
        raise fail(exc) from None
    index = 0
    while not sink.full:
        try:
            row = next(rows)
        except StopIteration:
            break
        except Exception as exc:
            raise fail(exc) from None
        if index == 0 and isinstance(row, dict) and fields.text not in row:
            raise InputError(f"Hub dataset '{name}' has no '{fields.text}' field "
                             f"(fields: {', '.join(map(str, row))}); set the source's text_field")
        item = f"{address}#record{index}"
        doc = record_document(row, item, fields, source=address, rel=address,
                              provenance={"format": "hub", "split": split, "record": index}, sink=sink)
        index += 1
        if doc is not None:
            sink.add(doc, item)


def _hub_error(name: str, exc: BaseException) -> str:
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    if not offline:
        try:
            from huggingface_hub import constants

            offline = bool(constants.HF_HUB_OFFLINE)
        except Exception:  # pragma: no cover - huggingface_hub ships with datasets
            pass
    if offline:
        return (f"cannot stream Hub dataset '{name}': offline mode (HF_HUB_OFFLINE is set); "
                f"pass local files or folders instead")
    return f"cannot stream Hub dataset '{name}': {one_line(exc)}"
