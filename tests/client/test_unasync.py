"""The sync client is the async one without `await`: the committed _sync.py is what the script makes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_sync_client_is_made_from_the_async_one() -> None:
    done = subprocess.run(  # noqa: S603 - our own script
        [sys.executable, "scripts/unasync_client.py", "--check"], cwd=ROOT, capture_output=True, check=False
    )
    assert done.returncode == 0, "src/ragapi/client/_sync.py is stale: run `uv run python scripts/unasync_client.py`"
