"""One registry type for everything the suite looks up by name.

Methods (:data:`kdseg.methods.base.METHODS`), backbones (:data:`kdseg.models.registry.BACKBONES`),
input providers (:data:`kdseg.inputs.PROVIDERS`) and teacher kinds
(:data:`kdseg.teachers.TEACHERS`) are :class:`Registry` instances and behave alike:

* ``register(name, obj, **info)`` (or ``@registry.register(name)``) adds an entry with free-form
  ``info`` (a backbone's ``view`` and options, say). Registering the same object again under the
  same name is a no-op (a module imported twice); another object under a taken name is a
  ``ValueError`` naming both.
* ``get(name)`` returns the entry; an unknown name is a ``ConfigError`` on the registry's config
  key, listing the registered names. Built-in entries are found by a ``discover`` hook (importing
  the package that registers them, lazily), outside ones through a Python entry-point group
  (``importlib.metadata``) and, where allowed, a ``module:attribute`` path.
* ``names()`` lists every known name (entry points included, without loading them).

This module imports no torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar, overload

from kdseg.errors import ConfigError

T = TypeVar("T")


def _describe(obj: Any) -> str:
    module = getattr(obj, "__module__", "?")
    return f"{module}.{getattr(obj, '__qualname__', repr(obj))}"


class Registry(Generic[T]):
    """Name -> object (class or factory) with lazy discovery.

    Args:
        kind: what an entry is, in messages (``"method"``, ``"backbone"``).
        config_key: the config key that names an entry (``ConfigError`` key).
        discover: called once before the first look-up or listing; imports the modules whose
            decorators register the built-in entries.
        entry_points: the ``importlib.metadata`` entry-point group of outside entries
            (``kdseg.methods``); each entry point's name is the registry name.
        allow_paths: accept ``package.module:Attribute`` names, imported on first use.
        check: called as ``check(name, obj)`` before an entry is registered; raises on a bad
            entry (e.g. a method that does not subclass ``Method``).
    """

    def __init__(
        self,
        kind: str,
        config_key: str,
        discover: Callable[[], None] | None = None,
        entry_points: str | None = None,
        allow_paths: bool = False,
        check: Callable[[str, Any], None] | None = None,
    ) -> None:
        self.kind = kind
        self.config_key = config_key
        self.entry_point_group = entry_points
        self.allow_paths = allow_paths
        self._discover = discover
        self._discovered = discover is None
        self._check = check
        self._entries: dict[str, T] = {}
        self._info: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------------ registering
    @overload
    def register(self, name: str, obj: None = None, **info: Any) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, obj: T, **info: Any) -> T: ...

    def register(self, name: str, obj: T | None = None, **info: Any) -> T | Callable[[T], T]:
        """Register ``obj`` under ``name`` (as a decorator when ``obj`` is omitted)."""
        if obj is None:

            def decorate(target: T) -> T:
                return self.register(name, target, **info)

            return decorate
        if not name or not isinstance(name, str):
            raise ValueError(f"a {self.kind} needs a non-empty name, got {name!r}")
        old = self._entries.get(name)
        if old is not None:
            if old is obj:
                return obj
            raise ValueError(
                f"{self.kind} {name!r} is registered twice: {_describe(old)} and {_describe(obj)}"
            )
        if self._check is not None:
            self._check(name, obj)
        self._entries[name] = obj
        self._info[name] = dict(info)
        return obj

    # --------------------------------------------------------------------------- look-up
    def _ensure_discovered(self) -> None:
        if not self._discovered:
            self._discovered = True  # first, so that a discover hook may look entries up
            assert self._discover is not None
            self._discover()

    def _entry_points(self) -> dict[str, Any]:
        if self.entry_point_group is None:
            return {}
        from importlib.metadata import entry_points

        return {ep.name: ep for ep in entry_points(group=self.entry_point_group)}

    def _load_path(self, name: str) -> T:
        module_name, _, attr = name.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigError(
                self.config_key, f"{self.kind} {name!r}: cannot import {module_name} ({exc})"
            ) from None
        try:
            obj = getattr(module, attr)
        except AttributeError:
            raise ConfigError(
                self.config_key, f"{self.kind} {name!r}: {module_name} has no {attr!r}"
            ) from None
        return self.register(name, obj) if self._entries.get(name) is not obj else obj

    def get(self, name: str) -> T:
        """The entry ``name`` (built-in, entry point or ``module:attribute`` path)."""
        if name in self._entries:  # no discovery needed (keeps a run's imports to what it uses)
            return self._entries[name]
        self._ensure_discovered()
        if name in self._entries:
            return self._entries[name]
        if self.allow_paths and ":" in name:
            return self._load_path(name)
        ep = self._entry_points().get(name)
        if ep is not None:
            try:
                obj = ep.load()
            except Exception as exc:
                raise ConfigError(
                    self.config_key,
                    f"{self.kind} {name!r} (entry point {ep.value} of group "
                    f"{self.entry_point_group}) cannot be loaded: {exc}",
                ) from None
            if name not in self._entries:
                self.register(name, obj)
            return self._entries[name]
        hint = " (or give a module:Class path)" if self.allow_paths else ""
        raise ConfigError(
            self.config_key, f"unknown {self.kind} {name!r}; registered: {self.names()}{hint}"
        )

    def info(self, name: str) -> dict[str, Any]:
        """The ``info`` given when ``name`` was registered (loading it if needed)."""
        self.get(name)
        return self._info.get(name, {})

    def names(self) -> list[str]:
        """Every known name, sorted: registered ones and (unloaded) entry points."""
        self._ensure_discovered()
        return sorted(set(self._entries) | set(self._entry_points()))

    def loaded(self) -> dict[str, T]:
        """The entries registered so far (no discovery, no entry points)."""
        return dict(self._entries)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        self._ensure_discovered()
        return name in self._entries or name in self._entry_points()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
