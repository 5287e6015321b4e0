import pytest

from buildbench.builders.chunking import chunk_document, chunk_documents, split_sentences
from buildbench.builders.normalize import normalize_text
from buildbench.domain_pack import ChunkingConfig
from buildbench.errors import ConfigError
from buildbench.records import Document

# Twelve sentences of roughly 60-90 characters, in three paragraphs.
SENTENCES = [
    "The Committee decided to maintain the target range for the federal funds rate.",
    "Recent indicators suggest that economic activity has continued to expand at a solid pace.",
    "Job gains have remained strong, and the unemployment rate has remained low.",
    "Inflation has eased over the past year but remains elevated.",
    "The Committee seeks to achieve maximum employment and inflation at the rate of 2 percent over the longer run.",
    "The economic outlook is uncertain, and the Committee remains highly attentive to inflation risks.",
    "In considering any adjustments, the Committee will carefully assess incoming data.",
    "The Committee will continue reducing its holdings of Treasury securities.",
    "It is strongly committed to returning inflation to its 2 percent objective.",
    "Voting for the monetary policy action were all members present at the meeting.",
    "Financial conditions tightened modestly over the intermeeting period.",
    "Participants noted that credit remained available to most borrowers.",
]
TEXT = normalize_text(" ".join(SENTENCES[:4]) + "\n\n" + " ".join(SENTENCES[4:8]) + "\n\n" + " ".join(SENTENCES[8:]))


def doc(text: str = TEXT, doc_id: str = "fomc-1") -> Document:
    return Document(id=doc_id, text=text, title="Statement")


def texts(spans, text):
    return [text[s:e] for s, e in spans]


# ---------------------------------------------------------------------------------------------- sentences


def test_sentences_of_plain_paragraphs():
    assert texts(split_sentences(TEXT), TEXT) == SENTENCES


@pytest.mark.parametrize("sentence", [
    "The U.S. economy expanded at an annual rate of approx. 2.5% in the quarter.",
    "Apple Inc. and Acme Corp. filed under Rule No. 12 on Jan. 5 with the S.E.C. in Washington.",
    "Some assets, e.g. Treasury bills, i.e. short-dated paper, rallied at 10 a.m. Eastern.",
    "Mr. J. Powell and Dr. Brainard spoke at the St. Louis Fed, see Vol. 3 and p. 17 of the report.",
    "Yields rose 0.25 percentage point to 4.75 percent vs. 4.5 percent a year earlier.",
])
def test_abbreviations_and_decimals_do_not_split(sentence):
    assert texts(split_sentences(sentence), sentence) == [sentence]


def test_real_boundaries_still_split():
    text = "Growth was 2.5%. Inflation fell! Did rates rise? Yes. The board said no. Markets rallied in the U.S. market."
    assert texts(split_sentences(text), text) == [
        "Growth was 2.5%.", "Inflation fell!", "Did rates rise?", "Yes.", "The board said no.",
        "Markets rallied in the U.S. market.",
    ]


def test_quotes_lists_headings_and_wrapped_lines():
    text = normalize_text(
        'Outlook\nHe said "rates will hold." Then he left.\n'
        "1. Rates held.\n2. Runoff continued,\nand the dollar\nweakened."
    )
    assert texts(split_sentences(text), text) == [
        "Outlook", 'He said "rates will hold."', "Then he left.", "1. Rates held.",
        "2. Runoff continued,\nand the dollar\nweakened.",
    ]


def test_paragraph_break_ends_a_sentence_without_punctuation():
    text = "A heading without a period\n\nthe body starts lowercase"
    assert texts(split_sentences(text), text) == ["A heading without a period", "the body starts lowercase"]


# ------------------------------------------------------------------------------------------------- chunks


def test_document_that_fits_is_one_chunk_equal_to_its_text():
    d = doc()
    [chunk] = chunk_document(d, ChunkingConfig(max_chars=len(TEXT)))
    assert chunk.text == TEXT == d.text
    assert (chunk.id, chunk.doc_id, chunk.position, chunk.start, chunk.end, chunk.title) == (
        "fomc-1-c0", "fomc-1", 0, 0, len(TEXT), "Statement")


def test_chunks_respect_the_budget_and_their_offsets():
    cfg = ChunkingConfig(max_chars=250, overlap_sentences=1, min_chars=0)
    chunks = chunk_document(doc(), cfg)
    assert len(chunks) > 3
    for pos, c in enumerate(chunks):
        assert len(c.text) <= 250
        assert TEXT[c.start:c.end] == c.text
        assert c.id == f"fomc-1-c{pos}" and c.position == pos
        # Chunks are whole sentences: they start and end on sentence boundaries.
        assert any(c.text.startswith(s) for s in SENTENCES) and any(c.text.endswith(s) for s in SENTENCES)
    # Nothing is lost: every sentence is in some chunk.
    for s in SENTENCES:
        assert any(s in c.text for c in chunks)


def test_overlap_repeats_the_last_sentence_of_the_previous_chunk():
    chunks = chunk_document(doc(), ChunkingConfig(max_chars=250, overlap_sentences=1))
    for prev, nxt in zip(chunks, chunks[1:]):
        last = [s for s in SENTENCES if prev.text.endswith(s)][0]
        assert nxt.text.startswith(last)
        assert nxt.start < prev.end


def test_two_sentence_overlap():
    chunks = chunk_document(doc(), ChunkingConfig(max_chars=400, overlap_sentences=2))
    assert len(chunks) > 2
    for prev, nxt in zip(chunks, chunks[1:]):
        shared = TEXT[nxt.start:prev.end]
        assert prev.text.endswith(shared) and nxt.text.startswith(shared)
        assert len(split_sentences(shared)) == 2


def test_no_overlap_partitions_the_text_in_order():
    chunks = chunk_document(doc(), ChunkingConfig(max_chars=200, overlap_sentences=0))
    for prev, nxt in zip(chunks, chunks[1:]):
        assert prev.end < nxt.start
        assert TEXT[prev.end:nxt.start].strip() == ""
    assert [s for c in chunks for s in SENTENCES if s in c.text] == SENTENCES


def test_overlap_never_breaks_the_budget():
    # Each sentence is close to the budget, so no overlap fits: chunks are single sentences.
    long_sents = [f"Sentence number {i} " + "carries words " * 10 + "to the end." for i in range(4)]
    text = " ".join(long_sents)
    chunks = chunk_document(doc(text), ChunkingConfig(max_chars=len(long_sents[0]) + 5, overlap_sentences=3))
    assert [c.text for c in chunks] == long_sents


def test_long_sentence_splits_at_word_boundaries():
    words = [f"word{i:03d}" for i in range(120)]
    sentence = " ".join(words) + "."
    chunks = chunk_document(doc(sentence), ChunkingConfig(max_chars=100, overlap_sentences=1))
    assert len(chunks) > 5
    seen = []
    for c in chunks:
        assert len(c.text) <= 100
        assert sentence[c.start:c.end] == c.text
        for w in c.text.rstrip(".").split():
            assert w in words  # no word was cut
            seen.append(w)
    assert sorted(set(seen)) == words


def test_a_word_longer_than_the_budget_is_hard_cut():
    text = "See " + "x" * 250 + " now."
    chunks = chunk_document(doc(text), ChunkingConfig(max_chars=100, overlap_sentences=0))
    assert all(len(c.text) <= 100 for c in chunks)
    assert "".join(c.text.replace(" ", "") for c in chunks) == text.replace(" ", "")


def test_chunking_is_deterministic():
    cfg = ChunkingConfig(max_chars=300)
    assert chunk_document(doc(), cfg) == chunk_document(doc(), cfg)


def test_empty_document_has_no_chunks():
    assert chunk_document(doc(""), ChunkingConfig()) == []


# ----------------------------------------------------------------------------------------------- dropping


def test_chunk_documents_drops_short_chunks_with_reason():
    short = doc("Rates held.", "short-doc")
    exact = doc("x" * 20, "exact-doc")
    cfg = ChunkingConfig(max_chars=250, min_chars=20, overlap_sentences=1)
    chunks, drops = chunk_documents([doc(), short, exact], cfg, stage="chunk")
    assert [d.item_id for d in drops] == ["short-doc-c0"]
    assert (drops[0].stage, drops[0].reason) == ("chunk", "too_short")
    assert "11 characters" in drops[0].detail and "min_chars=20" in drops[0].detail
    assert "exact-doc-c0" in {c.id for c in chunks}
    assert all(len(c.text) >= 20 for c in chunks)
    assert {c.doc_id for c in chunks} == {"fomc-1", "exact-doc"}


def test_dropping_keeps_positions_and_ids():
    # A short tail sentence after a chunk that is full: with no overlap it becomes its own short chunk.
    text = "A" * 95 + ". Tail."
    chunks, drops = chunk_documents([doc(text, "d")], ChunkingConfig(max_chars=100, min_chars=10, overlap_sentences=0),
                                   stage="chunk")
    assert [c.id for c in chunks] == ["d-c0"]
    assert [(d.item_id, d.reason) for d in drops] == [("d-c1", "too_short")]


def test_invalid_config_is_a_config_error():
    with pytest.raises(ConfigError, match="max_chars"):
        chunk_document(doc(), ChunkingConfig(max_chars=0))
    with pytest.raises(ConfigError, match="overlap_sentences"):
        chunk_documents([doc()], ChunkingConfig(overlap_sentences=-1), stage="chunk")
