"""Publishing built tasks as versioned Hub dataset repos: cards, versions, local and remote hubs.

- ``base``: the ``Publisher`` protocol and ``PublishResult``;
- ``local``: ``LocalHub``, bare git repos laid out for olah to serve;
- ``hf``: ``HfHub``, the Hugging Face Hub through ``huggingface_hub.HfApi``;
- ``versioning``: semantic versions, the content hash and the versioning rules;
- ``card``: the card of a published version (provenance block, changelog);
- ``targets``: ``parse_target`` of ``hf://`` and ``file://`` addresses;
- ``publish``: ``publish(path, to, ...)``, a task folder (``publish_task``) or a run folder (``publish_run``).
"""

from .base import PublishResult, Publisher
from .local import LocalHub

__all__ = ["LocalHub", "PublishResult", "Publisher", "publish_task", "HfHub"]


def __getattr__(name: str):
    # huggingface_hub and the task compiler load only when publishing needs them.
    if name == "publish_task":
        from .publish import publish_task

        return publish_task
    if name == "HfHub":
        from .hf import HfHub

        return HfHub
    raise AttributeError(name)
