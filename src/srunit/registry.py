"""Name -> class registries. An unknown name fails with the list of known ones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from srunit.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """A registry of classes of one kind (e.g. methods); `register` is used as a decorator."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            return obj

        return add

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise ConfigError(f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self._entries))}") from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries


METHODS: Registry[type] = Registry("method")
