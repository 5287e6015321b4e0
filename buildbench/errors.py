"""The error hierarchy. The CLI turns any BuildBenchError into one line and a non-zero exit."""


class BuildBenchError(Exception):
    """Base of every error buildbench raises on purpose."""

    exit_code = 1


class ConfigError(BuildBenchError):
    """A domain pack, config file or CLI option is invalid."""

    exit_code = 2


class InputError(BuildBenchError):
    """An input file or record cannot be used and the run cannot go on without it."""

    exit_code = 3


class GenerationError(BuildBenchError):
    """An LLM backend cannot run or keeps failing."""

    exit_code = 4


class QualityError(BuildBenchError):
    """A built task fails its quality rules."""

    exit_code = 5


class PublishError(BuildBenchError):
    """Publishing to a hub failed."""

    exit_code = 6


class MissingDependencyError(BuildBenchError):
    """An optional dependency is not installed; the message carries the pip line."""

    exit_code = 7

    def __init__(self, module: str, extra: str, purpose: str):
        super().__init__(
            f"{purpose} needs the '{module}' package: pip install 'buildbench[{extra}]'"
        )


def require(module: str, extra: str, purpose: str):
    """Import an optional dependency or fail with the exact install line."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(module.split(".")[0], extra, purpose) from exc
