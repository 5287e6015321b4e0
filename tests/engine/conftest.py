import os

import pytest


@pytest.fixture(scope="module")
def ray_cluster(request):
    """A local two-CPU Ray cluster for the module (``ray.init(num_cpus=2)``): no usage report, no dashboard,
    nothing off this machine. The module's own functions (toy stages, seam tests) are shipped to the workers by
    value, since a worker cannot import a test module; the module's ``RAY_INIT`` adds init options."""
    ray = pytest.importorskip("ray", reason="needs buildbench[ray]")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    ray.cloudpickle.register_pickle_by_value(request.module)
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, **getattr(request.module, "RAY_INIT", {}))
    yield ray
    ray.shutdown()
