"""Exporting a finished run as fine-tuning data: (query, positive, hard negatives) triplets built from the same
filters and mining as its benchmark, in sentence-transformers, BEIR or FlagEmbedding-style jsonl format, behind a
leakage guard that withholds everything a published test task holds (exactly or as a MinHash near-duplicate).

- ``triplets``: the ``Triplet`` record and how a run's datasets make them;
- ``leakage``: the guard against test task folders and a registry's fingerprints;
- ``formats``: the writers;
- ``exporter``: ``export_run(run_dir, out, fmt, split, test_tasks, ...) -> ExportReport``;
- ``options``: the ``build-bench export`` command's options.
"""

__all__ = ["ExportReport", "Triplet", "export_run"]


def __getattr__(name: str):
    # The command line imports ``options`` to build its parser; pyarrow and the run readers load when used.
    if name in ("ExportReport", "export_run"):
        from . import exporter

        return getattr(exporter, name)
    if name == "Triplet":
        from .triplets import Triplet

        return Triplet
    raise AttributeError(name)
