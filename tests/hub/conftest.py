"""Fixtures for the hub tests: small hand-written tasks, a LocalHub, and a real olah server serving it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx
import pyarrow as pa
import pytest

from buildbench.tasks import TaskInfo, write_retrieval_task
from tests.servers import _die_with_parent, free_port, stop_process

# Each row: a document id, its title and text, and a query that asks for it in other words.
KITCHEN = [
    ("k0", "Cast iron care", "Dry a cast iron pan on the stove after washing and rub a thin film of oil into it so it does not rust.",
     "how to keep a heavy skillet from corroding"),
    ("k1", "Knife sharpening", "Hold the blade at about fifteen degrees against a whetstone and draw it across in smooth even strokes.",
     "angle for honing a kitchen blade on a stone"),
    ("k2", "Bread proofing", "Dough rises best in a warm draught-free spot until it has roughly doubled in volume.",
     "where should I leave yeast dough to grow"),
    ("k3", "Stock making", "Simmer roasted bones with onion, carrot and celery for several hours, skimming the foam from the top.",
     "steps for a rich broth from roasted bones"),
    ("k4", "Rice cooking", "Rinse the grains until the water runs clear, then cook with one and a half parts water under a tight lid.",
     "water ratio for fluffy steamed grains"),
    ("k5", "Egg poaching", "Slide the egg into barely simmering water with a splash of vinegar so the white sets around the yolk.",
     "keeping the white together when cooking eggs in water"),
    ("k6", "Herb storage", "Stand fresh parsley and coriander in a glass of water in the fridge, loosely covered with a bag.",
     "keep leafy green seasonings fresh longer"),
    ("k7", "Caramel", "Melt sugar over medium heat without stirring and swirl the pan until it turns a deep amber colour.",
     "making a golden syrup by heating sugar"),
]
NOISE = [
    ("n0", "Tide tables", "Coastal walkers check the tide tables so a rising sea does not cut them off below the cliffs."),
    ("n1", "Lichen", "Lichens are partnerships between a fungus and an alga and can grow on bare rock."),
    ("n2", "Street lamps", "Old gas street lamps were lit each evening by a lamplighter carrying a long pole."),
]


def kitchen_tables(changed: bool = False) -> tuple[pa.Table, pa.Table, pa.Table]:
    """8 queries over 11 documents. ``changed``: one document rewritten and one distractor added."""
    docs = [(i, t, x) for i, t, x, _ in KITCHEN] + list(NOISE)
    if changed:
        docs[2] = ("k2", "Bread proofing", "Leave the dough covered somewhere warm until it has doubled, about an hour.")
        docs.append(("n3", "Hedgehogs", "Hedgehogs roll into a ball of spines when they feel threatened at night."))
    corpus = pa.table({"id": [d[0] for d in docs], "title": [d[1] for d in docs], "text": [d[2] for d in docs]})
    queries = pa.table({"id": [f"q{i}" for i in range(len(KITCHEN))], "text": [row[3] for row in KITCHEN]})
    qrels = pa.table({
        "query-id": [f"q{i}" for i in range(len(KITCHEN))],
        "corpus-id": [row[0] for row in KITCHEN],
        "score": pa.array([1] * len(KITCHEN), pa.int64()),
    })
    return corpus, queries, qrels


def kitchen_info() -> TaskInfo:
    return TaskInfo(
        name="KitchenTipsRetrieval",
        description="Find the cooking tip a question asks about.",
        domain="cooking",
        provenance={"generator": "local:gemma3-270m", "recipes": {"paraphrase": 8}, "seed": 7,
                    "filters": {"dedup": "9 -> 8"}, "buildbench_version": "0.1.0"},
    )


def write_kitchen_task(folder: Path, changed: bool = False) -> Path:
    return write_retrieval_task(folder, *kitchen_tables(changed), kitchen_info())


@pytest.fixture
def kitchen_task(tmp_path: Path) -> Path:
    return write_kitchen_task(tmp_path / "kitchen")


# -- olah


@dataclass
class Olah:
    endpoint: str  # http://127.0.0.1:PORT, the value of HF_ENDPOINT for clients
    root: Path  # the LocalHub root olah serves (its mirrors-path)
    process: subprocess.Popen
    log_path: Path

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


@contextmanager
def olah_server(root: Path, startup_timeout: float = 60.0) -> Iterator[Olah]:
    """Run ``olah-cli -c CONFIG`` on 127.0.0.1 serving the bare repos under ``root`` (read-only, offline).

    olah serves a local repo from ``<mirrors-path>/<repo_type>/<org>/<repo>`` (``olah/server_mirror.py``);
    ``offline = true`` keeps it from ever asking huggingface.co whether a repo exists. Its own cache and logs
    go to a temporary folder. Yields once ``/api/datasets/none/none/refs`` answers (any HTTP status).
    """
    olah_cli = shutil.which("olah-cli") or str(Path(sys.executable).with_name("olah-cli"))
    if not Path(olah_cli).exists():
        pytest.skip("olah is not installed (pip install 'buildbench[dev]')")
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="olah-"))
    config = workdir / "olah.toml"
    config.write_text(
        "[basic]\n"
        'host = "127.0.0.1"\n'
        f"port = {port}\n"
        f'repos-path = "{workdir / "cache"}"\n'
        f'mirror-netloc = "127.0.0.1:{port}"\n'
        f'mirror-lfs-netloc = "127.0.0.1:{port}"\n'
        f'mirrors-path = ["{Path(root).resolve()}"]\n'
        "\n[accessibility]\n"
        "offline = true\n"
    )
    log_path = workdir / "olah.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "OLAH_"))}
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [olah_cli, "-c", str(config), "--log-path", str(workdir / "logs")],
            stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir, env=env,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
    server = Olah(f"http://127.0.0.1:{port}", Path(root), process, log_path)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"olah exited with code {process.returncode}:\n{server.log_tail()}")
            try:
                httpx.get(f"{server.endpoint}/api/datasets/none/none/refs", timeout=2.0)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"olah not ready after {startup_timeout:.0f}s:\n{server.log_tail()}")
                time.sleep(0.25)
        yield server
    finally:
        stop_process(process)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def olah(tmp_path: Path) -> Iterator[Olah]:
    """A real olah on a free port serving ``tmp_path/hub`` (a LocalHub root; publish into it while it runs)."""
    root = tmp_path / "hub"
    root.mkdir()
    with olah_server(root) as server:
        yield server
