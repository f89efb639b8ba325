"""MkDocs hook: the README's relative links must resolve, as the site's own links must in strict mode.

The README lives outside `docs/`, so MkDocs does not check it; its links into the documentation
(`docs/api.md`, ...) are checked here before every build, and a broken one fails it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError

LINK = re.compile(r"\]\(([^)\s]+)\)")
EXTERNAL = ("http://", "https://", "mailto:", "#")


def on_pre_build(config: MkDocsConfig, **_: Any) -> None:
    readme = Path(config.config_file_path).parent / "README.md"
    broken = [
        target
        for target in LINK.findall(readme.read_text(encoding="utf-8"))
        if not target.startswith(EXTERNAL) and not (readme.parent / target.split("#", 1)[0]).exists()
    ]
    if broken:
        raise PluginError(f"README.md links to files that do not exist: {', '.join(broken)}")
