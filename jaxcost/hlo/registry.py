"""One registry pattern for per-key rules: a decorator that files a function under several keys.

A key is filed once: a second function for it, or a key the registry's owner says would never be looked up,
raises at registration (import time) rather than being silently overwritten or never run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

Function = TypeVar("Function", bound=Callable)


def _qualified_name(function: Callable) -> str:
    """``module.name`` of a function, as an error message names it."""
    return f"{function.__module__}.{function.__qualname__}"


def _never_looked_up(key: str) -> str | None:
    """The default check: every key can be looked up."""
    return None


def registrar(table: dict[str, Function], kind: str, never_looked_up: Callable[[str], str | None] = _never_looked_up,
              ) -> Callable[..., Callable[[Function], Function]]:
    """A decorator factory: ``@register("a", "b")`` files the function in ``table`` under "a" and "b".

    ``kind`` names what is filed, in error messages ("rule for opcode", "custom-call target"). ``never_looked_up(key)``
    says why a function filed under ``key`` would never be called (None when it would). Raises ValueError, filing
    none of ``keys``, for a key already filed (naming both functions) or one that would never be looked up.
    """
    def register(*keys: str) -> Callable[[Function], Function]:
        def file(function: Function) -> Function:
            for index, key in enumerate(keys):
                if key in table or key in keys[:index]:
                    first = table.get(key, function)
                    raise ValueError(f"{kind} {key!r} registered twice: by {_qualified_name(first)}, then by "
                                     f"{_qualified_name(function)}")
                why = never_looked_up(key)
                if why is not None:
                    raise ValueError(f"{kind} {key!r} ({_qualified_name(function)}) would never run: {why}")
            table.update(dict.fromkeys(keys, function))
            return function
        return file
    return register
