"""One generic registry: decorator registration, entry-point plugins, "did you mean" lookups."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from importlib import import_module
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from deltaprompts.errors import DeltaError, UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of objects of one kind.

    `kind` names the objects in error messages ("family", "op"); `modules` are imported on the
    first lookup (they register the built-in objects); `entry_point_group`, when
    given, is searched once, lazily, for third-party registrations: each entry point is loaded
    (which registers through the decorator) or, if it returns an unregistered object, registered
    under the entry point's name.
    """

    def __init__(self, kind: str, entry_point_group: str | None = None, modules: tuple[str, ...] = ()):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._group = entry_point_group
        self._modules = modules  # the built-in registrations: one list, imported on first lookup
        self._plugins_loaded = entry_point_group is None and not modules

    def register(self, name: str, obj: T) -> T:
        """Add `obj` under `name`; raises DeltaError when the name is taken by another object."""
        old = self._items.get(name)
        if old is not None and old is not obj:
            raise DeltaError(f"{self.kind} {name!r} is registered twice: {old!r} and {obj!r}")
        self._items[name] = obj
        return obj

    def decorator(self, name: str) -> Callable[[T], T]:
        """Return a decorator that registers its target under `name`."""
        return lambda obj: self.register(name, obj)

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True  # first: a module being imported may look names up
        for module in self._modules:
            try:
                import_module(module)
            except Exception as e:
                # a half-filled registry would answer "unknown family" for every name after the broken module
                self._plugins_loaded = False
                raise DeltaError(f"the built-in {self.kind} module {module} failed to import "
                                 f"({type(e).__name__}: {e}); this install of deltaprompts is broken") from e
        for ep in entry_points(group=self._group) if self._group else ():
            obj = ep.load()
            if ep.name not in self._items:
                self.register(ep.name, obj)

    def get(self, name: str) -> T:
        """Return the object named `name`; raises UnknownNameError listing the known names."""
        self._load_plugins()
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self._items) from None

    def names(self) -> list[str]:
        """Return all registered names, sorted."""
        self._load_plugins()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())
