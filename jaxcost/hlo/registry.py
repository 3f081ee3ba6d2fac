"""One registry pattern for per-key rules: a decorator that files a function under several keys."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

Function = TypeVar("Function", bound=Callable)


def registrar(table: dict[str, Function]) -> Callable[..., Callable[[Function], Function]]:
    """A decorator factory: ``@register("a", "b")`` files the function in ``table`` under "a" and "b"."""
    def register(*keys: str) -> Callable[[Function], Function]:
        def file(function: Function) -> Function:
            for key in keys:
                table[key] = function
            return function
        return file
    return register
