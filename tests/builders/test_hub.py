"""hub: Hub dataset addresses, and streaming that fails with one clear line when the Hub cannot be reached."""

import pytest

from buildbench.builders import hub_address, read_hub
from buildbench.builders.hub import parse_hub_address
from buildbench.domain_pack import HubSource
from buildbench.errors import InputError

from .conftest import CFG, STAGE, read


def test_hub_offline_is_one_clear_input_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import datasets
    import huggingface_hub.constants

    # The flags are read at import time; set them too in case another test imported datasets first.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(InputError) as err:
        read(["hf://datasets/example-org/finance-notes:default@main"], max_docs=5)
    message = str(err.value)
    assert "example-org/finance-notes" in message and "offline" in message
    assert "\n" not in message and err.value.__cause__ is None
    with pytest.raises(InputError, match="example-org/finance-notes"):
        read_hub(HubSource(dataset="example-org/finance-notes", split="test", text_field="body"), CFG, stage=STAGE)


def test_malformed_hub_address_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="hf://datasets/NAME"):
        read(["hf://datasets/"])


def test_hub_address_round_trip():
    src = HubSource(dataset="org/data", config="en", revision="v1.0")
    assert hub_address(src) == "hf://datasets/org/data:en@v1.0"
    assert hub_address(HubSource(dataset="org/data")) == "hf://datasets/org/data"


@pytest.mark.parametrize("address, parts", [
    ("hf://datasets/org/data", ("org/data", None, None)),
    ("hf://datasets/org/data:en", ("org/data", "en", None)),
    ("hf://datasets/org/data@refs/pr/1", ("org/data", None, "refs/pr/1")),
    ("hf://datasets/org/data:en@v1.0", ("org/data", "en", "v1.0")),
])
def test_parse_hub_address(address, parts):
    assert parse_hub_address(address) == parts


def test_a_malformed_address_fails_before_any_file_is_read(tmp_path):
    (tmp_path / "a.txt").write_text("Read nothing.", encoding="utf-8")
    with pytest.raises(InputError, match="'hf://datasets/org/data:a:b' is not a Hub dataset address"):
        read([str(tmp_path), "hf://datasets/org/data:a:b"])
