"""The runtime stands alone: LangChain is `ragapi.embedding`'s business."""

from __future__ import annotations

import subprocess
import sys


def test_the_runtime_imports_no_langchain() -> None:
    code = (
        "import sys, ragapi.minilm, ragapi.minilm.int8, ragapi.minilm.cost;"
        "print(sorted({m.split('.')[0] for m in sys.modules if m.startswith('langchain')}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)  # noqa: S603
    assert out.stdout.strip() == "[]"
