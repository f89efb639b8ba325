"""MkDocs hook: the configuration reference, rendered from the settings themselves.

`docs/configuration.md` holds the marker below; at build time it is replaced by one table per group of
`ragapi.core.settings.GROUPS` (variable, type, default, description, all read from the pydantic fields), so
the page cannot drift from the code. A page without the marker, or a setting without a description, fails
the build.
"""

from __future__ import annotations

import json
import types
from enum import Enum
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import annotated_types
from mkdocs.exceptions import PluginError
from mkdocs.structure.pages import Page
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from ragapi.core.settings import GROUPS, Settings

MARKER = "<!-- settings-reference -->"
PAGE = "configuration.md"
LONG_DEFAULT = 40  # characters: longer defaults are shown below their table, as JSON


def on_page_markdown(markdown: str, page: Page, **_: Any) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise PluginError(f"{PAGE} lost its {MARKER} marker: the settings reference has nowhere to go")
    return markdown.replace(MARKER, render())


def render() -> str:
    return "\n\n".join(_group(group) for group in GROUPS)


def _group(group: type[BaseModel]) -> str:
    title = group.model_config.get("title") or group.__name__
    doc = " ".join((group.__doc__ or "").split())
    rows = ["| variable | type | default | description |", "|---|---|---|---|"]
    long_defaults: list[str] = []
    for name, field in group.model_fields.items():
        if not field.description:
            raise PluginError(f"{group.__name__}.{name} has no description for the configuration reference")
        variable = _variable(name)
        value = _default_value(field)
        default = _show(value)
        if len(default) > LONG_DEFAULT:
            shown = json.dumps(value, indent=2).replace("\n", "\n    ")
            long_defaults.append(f'??? note "Default of `{variable}`"\n\n    ```json\n    {shown}\n    ```')
            default = "see below"
        elif default != "unset":
            default = f"`{default}`"
        rows.append(f"| `{variable}` | {_type(field)} | {default} | {_cell(field.description)} |")
    source = f"Set by `{group.__name__}` in `ragapi.core.settings`."
    parts = [f"## {title}", doc, source, "\n".join(rows), *long_defaults]
    return "\n\n".join(part for part in parts if part)


def _variable(name: str) -> str:
    prefix = Settings.model_config.get("env_prefix") or ""
    return f"{prefix}{name}".upper()


def _type(field: FieldInfo) -> str:
    annotation, optional = _unwrap_optional(field.annotation)
    words = _kind(annotation)
    bounds = _bounds(field)
    if bounds:
        words += f", {bounds}"
    return words + (", optional" if optional else "")


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(args) == 1:
            return args[0], len(args) != len(get_args(annotation))
    return annotation, False


def _kind(annotation: Any) -> str:
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "one of " + ", ".join(f"`{member.value}`" for member in annotation)
    origin = get_origin(annotation)
    if origin is list:
        return "JSON list"
    if origin is dict:
        return "JSON object"
    names = {bool: "boolean", int: "integer", float: "number", str: "string", Path: "path", SecretStr: "secret"}
    if annotation in names:
        return names[annotation]
    raise PluginError(f"no documentation type for {annotation!r}: teach docs/hooks/config_reference.py")


def _bounds(field: FieldInfo) -> str:
    low = high = ""
    notes: list[str] = []
    for item in field.metadata:
        if isinstance(item, annotated_types.Ge):
            low = f"≥ {item.ge}"
        elif isinstance(item, annotated_types.Gt):
            low = f"> {item.gt}"
        elif isinstance(item, annotated_types.Le):
            high = f"≤ {item.le}"
        elif isinstance(item, annotated_types.Lt):
            high = f"< {item.lt}"
        elif isinstance(item, annotated_types.MinLen) and item.min_length == 1:
            notes.append("not empty")
        elif getattr(item, "pattern", None):
            notes.append(f"matching `{item.pattern}`")
    if low.startswith("≥") and high.startswith("≤"):
        low, high = f"{low[2:]} to {high[2:]}", ""
    return ", ".join(part for part in (low, high, *notes) if part)


def _default_value(field: FieldInfo) -> Any:
    if field.default_factory is not None:
        return field.default_factory()  # type: ignore[call-arg]
    return field.default


def _show(value: Any) -> str:
    if value is None or value is PydanticUndefined:
        return "unset"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, bool | int | float | list | dict):
        return json.dumps(value)
    return str(value) if value != "" else '""'


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")
