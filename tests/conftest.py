"""Settings every test shares."""

import os

import pytest
from hypothesis import settings

# No per-example time limit: timing belongs in benchmarks/, and a loaded CI machine made a 200 ms
# deadline fail a property test that had passed (the example took 325 ms under load).
settings.register_profile("deltaprompts", deadline=None)
settings.load_profile("deltaprompts")


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster of 2 CPUs for the module that asks for it (generate and score use a Ray already
    initialised as it is); skipped when Ray is not installed."""
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'deltaprompts[ray]'")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ctx = ray.init(num_cpus=2, include_dashboard=False)
    yield ray, ctx
    ray.shutdown()
