"""markdown: syntax removed, words kept, and the title from front matter, the first heading or the file name."""

from buildbench.builders.markdown import strip_markdown

from .conftest import only_doc, read, write


def test_markdown_keeps_heading_words_and_takes_title(tmp_path):
    md = (
        "# Quarterly *credit* review\n\n"
        "Spreads on **high-yield** bonds widened, see [the chart](https://example.org/c.png).\n\n"
        "## Outlook\n\n"
        "- Defaults stay low\n"
        "- `snake_case_name` is kept\n\n"
        "> Quoted remark from a trader.\n\n"
        "---\n"
        "![yield curve](curve.png)\n"
    )
    doc = only_doc(read([str(write(tmp_path / "review.md", md))]))
    assert doc.title == "Quarterly credit review"
    assert doc.metadata["format"] == "markdown"
    assert doc.text.startswith("Quarterly credit review\n\nSpreads on high-yield bonds widened, see the chart.")
    assert "Outlook" in doc.text and "Defaults stay low" in doc.text
    assert "snake_case_name is kept" in doc.text
    assert "Quoted remark from a trader." in doc.text
    assert "yield curve" in doc.text
    for syntax in ("#", "**", "](", "- Defaults", "> Quoted", "---", "`"):
        assert syntax not in doc.text


def test_markdown_without_heading_uses_file_stem(tmp_path):
    doc = only_doc(read([str(write(tmp_path / "memo_2024.md", "Plain *memo* text.\n"))]))
    assert doc.title == "memo_2024"
    assert doc.text == "Plain memo text."


def test_markdown_front_matter_title_and_setext_heading(tmp_path):
    md = "---\ntitle: 'Liquidity note'\nauthor: desk\n---\nSetext heading\n==============\n\nBody text.\n"
    doc = only_doc(read([str(write(tmp_path / "n.md", md))]))
    assert doc.title == "Liquidity note"
    assert doc.text == "Setext heading\n\nBody text."


def test_code_fences_keep_their_content_and_links_their_words():
    md = "Intro with a [ref][1] and <!-- a comment -->an ~~old~~ note.\n\n```python\n# not a heading\n```\n" \
         "[1]: https://example.org\n"
    text, title = strip_markdown(md)
    assert title == ""
    assert text.split("\n") == ["Intro with a ref and an old note.", "", "# not a heading", "", ""]
