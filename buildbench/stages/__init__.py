"""One module per build stage, named after it: ``run(ctx)`` for a global stage, ``run_shard(shard, ctx)`` for a
map stage, and ``CONFIG_KEYS``, the config keys the stage reads, declared next to the code that reads them.
``common`` holds what several stages share. The registry that orders them is ``buildbench.pipeline.STAGES``."""
