"""Model specs on the CLI and in configs: `scheme:rest`, e.g. `hf:PATH_OR_ID`, `openai:MODEL@BASE_URL`."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from deltaprompts.errors import UserError
from deltaprompts.models.base import Backend
from deltaprompts.registry import Registry

Factory = Callable[[str], Backend]

# Each scheme's module registers its factory with @scheme(...) when imported; this is the one list.
SCHEMES: Registry[tuple[Factory, str]] = Registry(
    "model scheme",
    modules=(
        "deltaprompts.models.hf",
        "deltaprompts.models.openai_backend",
        "deltaprompts.models.replay",
        "deltaprompts.models.simulated",
        "deltaprompts.models.toy",
    ),
)


def scheme(name: str, form: str) -> Callable[[Factory], Factory]:
    """Register a backend factory for model specs `name:...`; `form` documents the accepted shape."""

    def wrap(factory: Factory) -> Factory:
        SCHEMES.register(name, (factory, form))
        return factory

    return wrap


def accepted_forms() -> str:
    """The accepted model spec forms, for error messages."""
    return ", ".join(SCHEMES.get(n)[1] for n in SCHEMES.names())


def load_backend(model_spec: str) -> Backend:
    """Build the backend a model spec names; raises UserError showing the accepted forms."""
    name, sep, rest = model_spec.partition(":")
    if not sep or not rest or name not in SCHEMES:
        raise UserError(f"model spec {model_spec!r} is not valid; accepted forms: {accepted_forms()}")
    factory, form = SCHEMES.get(name)
    backend = factory(rest)
    with contextlib.suppress(AttributeError):  # how a Ray worker builds the same backend (deltaprompts.score_ray)
        backend.spec = model_spec
    return backend
