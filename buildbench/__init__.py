"""buildbench: domain documents to trustworthy MTEB embedding benchmarks."""

__version__ = "0.1.0"
