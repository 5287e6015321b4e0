"""Small synthetic retrieval tasks for the submission tests, written from the word lists below.

Each document tells who did what, when and where; each query asks for one document in other words (a
paraphrase of the person and the deed, the time kept), so BM25 finds some but not all of them and a random
ranking of 150 documents scores near 0. ``german=True`` asks the same questions in German.
"""

from __future__ import annotations

import io
import json
import random
import tarfile
from pathlib import Path

import pyarrow as pa
import yaml

from buildbench.hub.validate import format_report
from buildbench.tasks import TaskInfo, write_retrieval_task

CORPUS_SHARD = "corpus/test-00000-of-00001.parquet"

# (as written in a document, as a query paraphrases it)
SUBJECTS = [
    ("the harbour master", "port official"), ("a retired airline pilot", "former aviator"),
    ("the village baker", "local bread maker"), ("a young botanist", "junior plant scientist"),
    ("the night nurse", "evening shift carer"), ("an old carpenter", "elderly woodworker"),
    ("the school librarian", "keeper of the classroom books"), ("a travelling violinist", "wandering fiddler"),
    ("the town mayor", "municipal leader"), ("a beekeeper from the hills", "upland apiarist"),
    ("the lighthouse keeper", "coastal beacon guardian"), ("a cheerful postman", "friendly mail carrier"),
]
# Subjects of a second, unrelated task, so that its queries share nothing with the first one's.
OTHER_SUBJECTS = [
    ("the museum curator", "gallery custodian"), ("a marathon runner", "long distance athlete"),
    ("the ferry captain", "boat skipper"), ("a glassblower", "molten glass artisan"),
    ("the railway signalman", "track signal operator"), ("a tea merchant", "leaf trader"),
    ("the stable hand", "horse groom"), ("a clockmaker", "watch repairer"),
    ("the choir director", "singing group leader"), ("a mountain guide", "alpine escort"),
    ("the radio presenter", "broadcast host"), ("a street juggler", "pavement performer"),
]
# (document phrase, English query paraphrase, German object, German participle)
ACTIONS = [
    ("repaired a wooden rowing boat", "fixed a timber vessel", "ein hölzernes Ruderboot", "repariert"),
    ("planted a row of apple trees", "put fruit saplings in the ground", "eine Reihe Apfelbäume", "gepflanzt"),
    ("painted the garden fence green", "coloured the yard barrier", "den Gartenzaun grün", "gestrichen"),
    ("wrote a long letter to the council", "sent a complaint to local government", "einen langen Brief an den Rat",
     "geschrieben"),
    ("cooked a large pot of soup for the neighbours", "made a broth for the people next door",
     "einen großen Topf Suppe für die Nachbarn", "gekocht"),
    ("tuned the old church organ", "adjusted the chapel instrument", "die alte Kirchenorgel", "gestimmt"),
    ("built a small shed for bicycles", "constructed a cycle shelter", "einen kleinen Schuppen für Fahrräder",
     "gebaut"),
    ("rescued a cat from a tall tree", "saved a stranded pet from the branches", "eine Katze von einem hohen Baum",
     "gerettet"),
    ("organised a chess tournament in the hall", "arranged a board game competition",
     "ein Schachturnier in der Halle", "organisiert"),
    ("cleaned the dusty attic windows", "washed the grimy roof panes", "die staubigen Dachfenster", "geputzt"),
    ("found a lost wedding ring on the beach", "discovered missing jewellery by the sea",
     "einen verlorenen Ehering am Strand", "gefunden"),
    ("taught the children to swim in the lake", "gave young ones swimming lessons",
     "den Kindern im See das Schwimmen", "beigebracht"),
]
# (English, German)
TIMES = [
    ("on a rainy Monday", "an einem regnerischen Montag"),
    ("early one spring morning", "an einem frühen Frühlingsmorgen"),
    ("during the summer festival", "während des Sommerfestes"),
    ("after the autumn storm", "nach dem Herbststurm"),
    ("late on a winter evening", "spät an einem Winterabend"),
]
PLACES = ["near the old mill", "beside the river bridge", "behind the railway station", "at the edge of the forest",
          "next to the market square", "on the hill above the town"]
REASONS = ["nobody else had the right tools", "the weather kept changing", "friends kept stopping by to help",
           "the materials arrived late", "it had to be done carefully", "the light was fading quickly"]


def task_tables(seed: int = 0, n_docs: int = 150, n_queries: int = 30, *, german: bool = False,
                subjects: list[tuple[str, str]] = SUBJECTS) -> tuple[pa.Table, pa.Table, pa.Table]:
    """A corpus of ``n_docs`` distinct stories and ``n_queries`` queries, one relevant story each."""
    rng = random.Random(seed)
    combos = [(s, a, t) for s in range(len(subjects)) for a in range(len(ACTIONS)) for t in range(len(TIMES))]
    picked = rng.sample(combos, n_docs)
    ids, texts, titles = [], [], []
    for i, (s, a, t) in enumerate(picked):
        subject = subjects[s][0]
        text = (f"{subject[0].upper()}{subject[1:]} {ACTIONS[a][0]} {TIMES[t][0]} {rng.choice(PLACES)}, and said "
                f"afterwards that it took {rng.randint(2, 9)} hours because {rng.choice(REASONS)}.")
        ids.append(f"d{i}")
        texts.append(text)
        titles.append(f"Story {i}")
    corpus = pa.table({"id": ids, "title": titles, "text": texts})
    q_ids, q_texts, rel = [], [], []
    # One query per (deed, time): the German questions name no person, and must not repeat.
    chosen, seen = [], set()
    for i in rng.sample(range(n_docs), n_docs):
        if picked[i][1:] not in seen:
            seen.add(picked[i][1:])
            chosen.append(i)
    for j, i in enumerate(chosen[:n_queries]):
        s, a, t = picked[i]
        if german:
            q = f"Wer hat {TIMES[t][1]} {ACTIONS[a][2]} {ACTIONS[a][3]}?"
        else:
            q = f"Which {subjects[s][1]} {ACTIONS[a][1]} {TIMES[t][0]}?"
        q_ids.append(f"q{j}")
        q_texts.append(q)
        rel.append(f"d{i}")
    queries = pa.table({"id": q_ids, "text": q_texts})
    qrels = pa.table({"query-id": q_ids, "corpus-id": rel, "score": pa.array([1] * len(q_ids), pa.int64())})
    return corpus, queries, qrels


def task_info(name: str = "VillageStoriesRetrieval", **overrides) -> TaskInfo:
    fields = {
        "name": name,
        "description": "Find the short village story a question asks about.",
        "domain": "fiction",
        "language": "en",
        "license": "cc-by-4.0",
        "provenance": {"generator": "hand-written templates", "seed": 0},
    }
    fields.update(overrides)
    return TaskInfo(**fields)


def write_task(folder: Path, name: str = "VillageStoriesRetrieval", *, seed: int = 0, n_docs: int = 150,
               n_queries: int = 30, german: bool = False, subjects: list[tuple[str, str]] = SUBJECTS,
               **info) -> Path:
    tables = task_tables(seed, n_docs, n_queries, german=german, subjects=subjects)
    return write_retrieval_task(Path(folder), *tables, task_info(name, **info))


# SQLite's side files of other tests' caches (pytest's base folder holds every test's tmp_path) come and go
# as their connections are collected, whatever the code under test does.
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def files_under(root: Path) -> set[str]:
    """Every path under ``root`` (to show nothing appeared outside a target folder), SQLite side files left out."""
    return {p.relative_to(root).as_posix() for p in Path(root).rglob("*") if not p.name.endswith(SQLITE_SIDE_FILES)}


# -- editing and packing a written task


def edit_header(task_dir: Path, change) -> None:
    card = task_dir / "README.md"
    _, head, body = card.read_text(encoding="utf-8").split("---\n", 2)
    header = yaml.safe_load(head)
    change(header)
    card.write_text("---\n" + yaml.safe_dump(header, sort_keys=False) + "---\n" + body, encoding="utf-8")



def edit_record(task_dir: Path, change) -> None:
    path = task_dir / "task.json"
    record = json.loads(path.read_text(encoding="utf-8"))
    change(record)
    path.write_text(json.dumps(record), encoding="utf-8")



def assert_rejected(report, check_id: str, reason: str) -> None:
    """The check failed with exactly this reason, and the report as a whole is a rejection."""
    assert not report.ok
    check = report.check(check_id)
    assert not check.passed and not check.skipped, format_report(report)
    assert check.reason == reason, format_report(report)



def tar_with(path: Path, members: dict[str, bytes], link: tuple[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo(link[0])
            info.type = tarfile.SYMTYPE
            info.linkname = link[1]
            tf.addfile(info)
    return path
