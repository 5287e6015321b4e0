"""Labels made elsewhere: JSONL, CSV, Argilla's and Label Studio's exports, checked against the run before any
is stored."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from buildbench.labels import LabelError, LabelStore
from buildbench.labels.formats import import_labels

from .rundata import make_run

CLI = [sys.executable, "-m", "buildbench.cli"]


@pytest.fixture
def run(tmp_path: Path) -> Path:
    make_run(tmp_path / "run")
    return tmp_path / "run"


def stored(run: Path) -> list[tuple]:
    return [(lab.query_id, lab.label, lab.reviewer, lab.passage_id, lab.note, lab.source)
            for lab in LabelStore(run).read()]


def test_jsonl_and_csv(run: Path, tmp_path: Path):
    f = tmp_path / "labels.jsonl"
    f.write_text(json.dumps({"query_id": "q1", "label": "Good", "reviewer": "ana"}) + "\n\n"
                 + json.dumps({"query_id": "q2", "label": "missed positive", "passage_id": "c3", "note": "c3 too"})
                 + "\n")
    result = import_labels(run, f, reviewer="bo")
    assert result.fmt == "jsonl" and "imported 2 labels" in result.summary()
    c = tmp_path / "labels.csv"
    c.write_text("query_id,label,annotator,note\nq3,wrong,cy@example.org,\"asks, about 2019\"\nq4,vague,,\n")
    import_labels(run, c)
    assert stored(run) == [
        ("q1", "good", "ana", "", "", "import:jsonl"),
        ("q2", "missed_positive", "bo", "c3", "c3 too", "import:jsonl"),
        ("q3", "wrong", "cy@example.org", "", "asks, about 2019", "import:csv"),
        ("q4", "vague", "import", "", "", "import:csv"),
    ]


def test_argilla_nested_and_flattened(run: Path, tmp_path: Path):
    nested = [{"id": "q1", "fields": {"query": "..."}, "metadata": {}, "suggestions": {}, "vectors": {},
               "responses": {"label": [{"value": "good", "user_id": "u-1"}, {"value": "wrong", "user_id": "u-2"}],
                             "note": [{"value": "fine", "user_id": "u-1"}]}, "_server_id": "x"},
              {"id": "r-2", "fields": {"query_id": "q2"}, "metadata": {}, "responses": {}}]  # not answered yet
    f = tmp_path / "argilla.json"
    f.write_text(json.dumps(nested))
    assert import_labels(run, f).fmt == "argilla"
    flat = [{"id": "r-3", "query_id": "q3", "label.responses": ["missed_positive", "vague"],
             "label.responses.users": ["u-1", "u-2"], "label.responses.status": ["submitted", "draft"],
             "passage_id.responses": ["c5"], "passage_id.responses.users": ["u-1"]}]
    g = tmp_path / "flat.json"
    g.write_text(json.dumps(flat))
    import_labels(run, g)
    assert stored(run) == [
        ("q1", "good", "u-1", "", "fine", "import:argilla"),
        ("q1", "wrong", "u-2", "", "", "import:argilla"),
        ("q3", "missed_positive", "u-1", "c5", "", "import:argilla"),  # the draft is not a label
    ]


def test_label_studio(run: Path, tmp_path: Path):
    tasks = [{"id": 7, "data": {"query_id": "q5", "text": "..."}, "annotations": [
        {"completed_by": {"email": "ana@example.org"}, "was_cancelled": False, "result": [
            {"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": ["wrong"]}},
            {"from_name": "note", "to_name": "text", "type": "textarea", "value": {"text": ["other quarter"]}}]},
        {"completed_by": 3, "was_cancelled": True, "result": [
            {"from_name": "label", "type": "choices", "value": {"choices": ["good"]}}]}]}]
    f = tmp_path / "ls.json"
    f.write_text(json.dumps(tasks))
    assert import_labels(run, f).fmt == "label-studio"
    assert stored(run) == [("q5", "wrong", "ana@example.org", "", "other quarter", "import:label-studio")]


@pytest.mark.parametrize("row, message", [
    ({"query_id": "q-nope", "label": "good"}, "unknown query id 'q-nope'"),
    ({"query_id": "q1", "label": "missed_positive", "passage_id": "c99"}, "passage 'c99' is not a candidate of query q1"),
    ({"query_id": "q1", "label": "excellent"}, "label 'excellent' is not one of good, vague, wrong, missed_positive"),
    ({"query_id": 5, "label": "good"}, "field(s) query_id must be text"),
    ({"query_id": "q1", "label": "missed_positive"}, "names the passage (passage_id)"),
])
def test_a_bad_record_imports_nothing(run: Path, tmp_path: Path, row: dict, message: str):
    f = tmp_path / "labels.jsonl"
    f.write_text(json.dumps({"query_id": "q2", "label": "good"}) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(LabelError) as err:
        import_labels(run, f)
    assert message in str(err.value) and f"{f}:2" in str(err.value) and "nothing imported" in str(err.value)
    assert stored(run) == []


def test_the_cli_imports_and_fails_in_one_line(run: Path, tmp_path: Path):
    good = tmp_path / "ok.csv"
    good.write_text("query_id,label\nq1,good\nq2,wrong\n")
    done = subprocess.run([*CLI, "label", str(run), "--import", str(good), "--reviewer", "dee"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "imported 2 labels" in done.stdout and "1 good, 1 wrong" in done.stdout and "dee" in done.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text("query_id,verdict\nq1,good\n")
    done = subprocess.run([*CLI, "label", str(run), "--import", str(bad)], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "header with at least query_id and label" in lines[0] and str(bad) in lines[0]
    assert [lab[0] for lab in stored(run)] == ["q1", "q2"]
