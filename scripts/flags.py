"""Command-line flags from a dataclass of arguments, the one way every script in this folder reads its own.

Each field becomes ``--field-name`` (a field without a default becomes a positional argument),
with the string literal under the field as its help::

    @dataclass
    class Args:
        episodes: int = 20
        \"\"\"Episodes per arm.\"\"\"
        workers: int | None = None
        \"\"\"Parallel episodes (default: all cores).\"\"\"
        baseline: bool = True
        \"\"\"Also run the scripted controller.\"\"\"

    args = parse(Args, __doc__)

Types: ``bool`` gives ``--name`` / ``--no-name``; ``X | None`` (``Optional[X]``) parses an ``X``
and keeps ``None`` as the default when the flag is left out; ``tuple[X, ...]`` and ``list[X]`` take
one or more values, ``tuple[X, Y]`` exactly two; ``Literal[...]`` gives choices; any other type is
called on the text (``int``, ``float``, ``str``, ``Path``). A ``ValueError`` raised by the
dataclass (e.g. in ``__post_init__``) is reported as a usage error, exit status 2.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import textwrap
import types
import typing
from collections.abc import Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def field_docs(cls: type) -> dict[str, str]:
    """The docstring written under each field of ``cls`` (fields without one are left out)."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):  # defined where no source can be read
        return {}
    body = ast.parse(source).body[0].body
    docs = {}
    for node, after in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def _without_none(hint: Any) -> tuple[Any, bool]:
    """``X`` and whether the hint was ``X | None``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(rest) == 1 and len(rest) < len(typing.get_args(hint)):
            return rest[0], True
        raise TypeError(f"unsupported union {hint!r}: only X | None is a flag type")
    return hint, False


def _argument(hint: Any) -> dict[str, Any]:
    """``add_argument`` keywords that parse a value of type ``hint`` (``None`` aside)."""
    origin, params = typing.get_origin(hint), typing.get_args(hint)
    if hint is bool:
        return {"action": argparse.BooleanOptionalAction}
    if origin is typing.Literal:
        return {"choices": params, "type": type(params[0])}
    if origin in (tuple, list):
        items = params[:1] if origin is list or params[1:] == (...,) else params
        if len(set(items)) != 1:
            raise TypeError(f"unsupported {hint!r}: the items of a flag's tuple share one type")
        nargs = "+" if origin is list or params[1:] == (...,) else len(items)
        return {"nargs": nargs, **_argument(items[0])}
    if not callable(hint):
        raise TypeError(f"unsupported flag type {hint!r}")
    return {"type": hint, "metavar": getattr(hint, "__name__", "VALUE").upper()}


def build_parser(cls: type, doc: str | None = None) -> argparse.ArgumentParser:
    """The parser of ``cls``'s fields; its description is the first paragraph of ``doc``."""
    description = " ".join(doc.strip().split("\n\n")[0].split()) if doc else None
    parser = argparse.ArgumentParser(description=description)
    hints, docs = typing.get_type_hints(cls), field_docs(cls)
    for field in dataclasses.fields(cls):
        hint, optional = _without_none(hints[field.name])
        kwargs = _argument(hint)
        help = docs.get(field.name, "").replace("%", "%%")
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            if optional:
                kwargs["nargs"] = "?"
            kwargs["metavar"] = field.name.upper()
            parser.add_argument(field.name, help=help, **kwargs)
            continue
        default = field.default if field.default_factory is dataclasses.MISSING else field.default_factory()
        flag = "--" + field.name.replace("_", "-")
        action = parser.add_argument(flag, dest=field.name, default=default, **kwargs)
        action.help = help  # set here: BooleanOptionalAction would add a default of its own
        if default is not None and default != ():  # the docstring says what None or nothing stands for
            shown = " ".join(map(str, default)) if isinstance(default, (tuple, list)) else str(default)
            shown = (flag if default else "--no-" + flag[2:]) if isinstance(default, bool) else shown
            action.help = f"{help} (default: {shown.replace('%', '%%')})".lstrip()
    return parser


def parse(cls: type[T], doc: str | None = None, argv: Sequence[str] | None = None) -> T:
    """An instance of the dataclass ``cls`` from ``argv`` (default ``sys.argv[1:]``)."""
    parser = build_parser(cls, doc)
    values = vars(parser.parse_args(argv))
    hints = typing.get_type_hints(cls)
    for name, value in values.items():
        if isinstance(value, list) and typing.get_origin(_without_none(hints[name])[0]) is tuple:
            values[name] = tuple(value)
    try:
        return cls(**values)
    except ValueError as exc:
        parser.error(str(exc))
