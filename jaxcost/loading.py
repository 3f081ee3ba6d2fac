"""What ``jaxcost model`` analyzes: a zoo model by name or a user's own (``package.module:Factory``,
``path/to/file.py:Factory``), its inputs (``--input SHAPE[:DTYPE]``, or one image) and its call's keywords
(``--kwarg``); an error raised by the user's own code is a ``ModelError`` saying where it came from.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any


class ModelError(Exception):
    """A user's model (its module file, factory or own code) raised while being loaded or traced."""

    def __init__(self, name: str, stage: str, error: BaseException, hint: str = "") -> None:
        super().__init__(f"{stage} {name!r} raised {type(error).__name__}: {first_line(error)}")
        self.error = error
        #: What the user may have left out, said after where the error came from ("; ..." or "").
        self.hint = hint


def first_line(error: BaseException) -> str:
    """The first line of what an error says."""
    text = str(error).strip()
    return text.splitlines()[0] if text else "(no message)"


def _load_attribute(name: str) -> Any:
    """``package.module:Attribute`` (the working directory is searched, as ``python -m`` does) or
    ``path/to/file.py:Attribute``."""
    location, _, attribute = name.rpartition(":")
    if location.endswith(".py") or Path(location).is_file():
        path = Path(location)
        if not path.is_file():
            raise ValueError(f"name: no such file {location!r}")
        folder = str(path.resolve().parent)
        if folder not in sys.path:  # the file's own imports of its neighbours work, as with python file.py
            sys.path.insert(0, folder)
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        if module_spec is None or module_spec.loader is None:
            raise ValueError(f"name: {location!r} cannot be loaded as a Python module")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[path.stem] = module
        try:
            module_spec.loader.exec_module(module)
        except Exception as error:
            raise ModelError(name, "loading", error) from error
    else:
        if str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))
        try:
            module = importlib.import_module(location)
        except ModuleNotFoundError as error:
            if error.name and location.startswith(error.name):
                raise ValueError(f"name: cannot import {location!r} (no module named {error.name!r}); give "
                                 "package.module:Factory from the working directory or path/to/file.py:Factory") \
                    from None
            raise ModelError(name, "loading", error) from error
        except Exception as error:
            raise ModelError(name, "loading", error) from error
    if not hasattr(module, attribute):
        raise ValueError(f"name: {location!r} has no attribute {attribute!r}")
    return getattr(module, attribute)


def _is_model(value: Any) -> bool:
    """A flax.linen or flax.nnx Module instance."""
    import flax.linen as nn

    from jaxcost.models.analysis import is_nnx_module

    return isinstance(value, nn.Module) or is_nnx_module(value)


def model_from_arguments(args: argparse.Namespace) -> Any:
    """The zoo model, or the module a ``module:Factory`` or ``file.py:Factory`` builds."""
    from jaxcost.models import build

    if ":" not in args.name:
        return build(args.name, alpha=args.alpha, dtype=args.dtype)
    factory = _load_attribute(args.name)
    if _is_model(factory):
        model = factory
    elif not callable(factory):
        raise ValueError(f"name: {args.name!r} is neither a flax Module nor a factory that builds one")
    else:
        try:
            model = factory()
        except TypeError as error:
            raise ValueError(f"name: {args.name!r} must be a Module or take no arguments: {error}") from None
        except Exception as error:
            raise ModelError(args.name, "the factory", error) from error
    if not _is_model(model):
        raise ValueError(f"name: {args.name!r} did not give a flax.linen or flax.nnx Module "
                         f"(got {type(model).__name__})")
    return model


def model_inputs(args: argparse.Namespace) -> list[Any]:
    """The model's inputs as ``jax.ShapeDtypeStruct`` s: each ``--input SHAPE[:DTYPE]``, or one image
    (batch, resolution, resolution, channels)."""
    import jax

    from jaxcost.models import ZOO
    from jaxcost.modules import jax_dtype
    from jaxcost.specs import dtype_name

    image = {"batch": args.batch, "resolution": args.resolution, "channels": args.channels}
    for name, value in image.items():
        if value is not None and value <= 0:
            raise ValueError(f"--{name}: must be a positive integer, got {value}")
    tokens = ZOO[args.name].tokens if args.name in ZOO else 0
    if tokens and not args.input:
        if args.resolution is not None or args.channels is not None:
            raise ValueError(f"--resolution: {args.name} takes tokens, not images; --input BATCH,LENGTH:int32 "
                             f"gives their shape (default {args.batch or 1},{tokens}:int32)")
        return [jax.ShapeDtypeStruct((args.batch or 1, tokens), jax.numpy.int32)]
    if tokens:
        inputs = _given_inputs(args)
        for text, given in zip(args.input, inputs):
            if not jax.numpy.issubdtype(given.dtype, jax.numpy.integer) or len(given.shape) != 2 \
                    or given.shape[1] > tokens:
                raise ValueError(f"--input: {args.name} takes integer token ids, BATCH,LENGTH:int32 with LENGTH at "
                                 f"most its context of {tokens}, got {text!r}")
        return inputs
    if not args.input:
        return [jax.ShapeDtypeStruct((args.batch or 1, args.resolution or 224, args.resolution or 224,
                                      args.channels or 3), jax_dtype(dtype_name(args.dtype)))]
    given = [f"--{name}" for name, value in image.items() if value is not None]
    if given:
        raise ValueError(f"--input: gives the input shapes; drop {', '.join(given)}")
    return _given_inputs(args)


def _given_inputs(args: argparse.Namespace) -> list[Any]:
    """Each ``--input SHAPE[:DTYPE]`` as a ``jax.ShapeDtypeStruct``."""
    import jax

    inputs = []
    for text in args.input:
        shape_text, _, dtype = text.partition(":")
        try:
            shape = tuple(int(size) for size in shape_text.split(","))
        except ValueError:
            shape = ()
        if not shape or any(size <= 0 for size in shape):
            raise ValueError(f"--input: {text!r} must be positive sizes, comma-separated, then :dtype if not "
                             "--dtype, like 1,128:int32")
        try:
            element = jax.numpy.dtype(dtype or args.dtype)
        except TypeError:
            raise ValueError(f"--input: {text!r}: unknown dtype {dtype or args.dtype!r}; numpy's names, like int32, "
                             "float32, bfloat16, bool") from None
        inputs.append(jax.ShapeDtypeStruct(shape, element))
    return inputs


#: Python's spellings of JSON's true, false and null, accepted in a ``--kwarg`` value.
PYTHON_CONSTANTS = {"True": True, "False": False, "None": None}
#: ``--kwarg`` values that look like a boolean or None in neither JSON's nor Python's spelling: refused, not
#: passed on as text (the string "FALSE" is true).
AMBIGUOUS_CONSTANTS = frozenset(("true", "false", "none", "null", "yes", "no", "on", "off"))


def model_keywords(args: argparse.Namespace) -> dict[str, Any]:
    """``--kwarg NAME=VALUE`` s as keyword arguments: the value read as JSON or as Python's True, False or
    None, or else kept as text; a value like a boolean in neither spelling (TRUE, yes, off) is refused."""
    keywords: dict[str, Any] = {}
    for text in args.kwarg or []:
        name, equals, value = text.partition("=")
        if not equals or not name.isidentifier():
            raise ValueError(f"--kwarg: {text!r} must be NAME=VALUE, like train=true")
        if value in PYTHON_CONSTANTS:
            keywords[name] = PYTHON_CONSTANTS[value]
            continue
        try:
            keywords[name] = json.loads(value)
        except ValueError:
            if value.lower() in AMBIGUOUS_CONSTANTS:
                raise ValueError(f"--kwarg: {text!r} is ambiguous: write true or false (True, False) for a boolean, "
                                 f"null (None) for None, or {name}='\"{value}\"' for the text") from None
            keywords[name] = value
    return keywords
