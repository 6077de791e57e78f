"""Settings every test shares."""

from hypothesis import settings

# No per-example time limit: timing belongs in benchmarks/, and a loaded CI machine made a 200 ms
# deadline fail a property test that had passed (the example took 325 ms under load).
settings.register_profile("deltaprompts", deadline=None)
settings.load_profile("deltaprompts")
