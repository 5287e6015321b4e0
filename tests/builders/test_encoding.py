"""encoding: UTF-8 and BOMs, cp1252 and charset-normalizer guesses (with a warning), binary files refused."""

import pytest

from buildbench.builders.documents import UnreadableInput
from buildbench.builders.encoding import decode_bytes

from .conftest import only_doc, read, write


def test_latin1_file_is_decoded_with_a_warning(tmp_path):
    text = "Le café de la réunion fut apprécié, même über alles.\nDéjà vu à Zürich."
    path = write(tmp_path / "note.txt", text.encode("latin-1"))
    result = read([str(path)])
    doc = only_doc(result)
    assert doc.text == text
    assert doc.metadata["encoding"] == "cp1252"
    assert result.skipped == []
    [warning] = result.warnings
    assert warning.item_id == str(path) and warning.reason == "not_utf8"
    assert warning.detail == "decoded as cp1252, not UTF-8"


def test_cp1252_typographic_quotes_are_decoded():
    text = "The Fed’s “dot plot” moved – again."
    assert decode_bytes(text.encode("cp1252")) == (text, "cp1252")
    assert decode_bytes(text.encode("utf-8")) == (text, "utf-8")
    assert decode_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))[0] == text


def test_other_encodings_go_through_charset_normalizer():
    text = "Центральный банк повысил ключевую ставку до семи процентов годовых, сообщил регулятор."
    decoded, encoding = decode_bytes(text.encode("koi8-r"))
    assert decoded == text
    assert encoding == "koi8_r"


def test_bom_marked_utf16_decodes_without_a_warning(tmp_path):
    text = "Die Zentralbank hielt den Leitzins stabil."
    assert decode_bytes(text.encode("utf-16")) == (text, "utf-16")
    result = read([str(write(tmp_path / "note.txt", text.encode("utf-16")))])
    assert only_doc(result).metadata == {"encoding": "utf-16", "format": "text"}
    assert result.warnings == []


@pytest.mark.parametrize("data, reason", [
    (b"text with a NUL\x00 byte", "binary"),
    (b"\x01\x02\x03\x04 mostly control characters \x05\x06", "binary"),
    (bytes(range(0x80, 0x100)) * 4, "undecodable"),
])
def test_what_is_not_text_is_refused_with_a_reason(data, reason):
    with pytest.raises(UnreadableInput) as err:
        decode_bytes(data)
    assert err.value.reason == reason and err.value.detail
