"""What embedding one text costs on this host, timed at warm-up.

A query's cost grows about linearly with its length, with a fixed part and a part per word piece that
differ several times between hosts (docs/benchmarks.md), so two lengths, timed as one caller embedding
one text runs them (tokenising, inference, pooling), give this host's line. `ragapi.embedding` sizes the queries it
embeds on the event loop with it (QUERY_EMBEDDING_INLINE_MS).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import NamedTuple

from ragapi.minilm.model import MiniLM

PROBE_TOKENS = (8, 40)  # lengths timed at warm-up to size QUERY_EMBEDDING_INLINE_MS in word pieces


class QueryCost(NamedTuple):
    """Seconds to embed one text of n word pieces: `fixed + per_token * n`."""

    fixed: float
    per_token: float

    def tokens_within(self, seconds: float) -> int:
        """The most word pieces a text may have to be embedded within `seconds` (0 if none fits)."""
        return max(0, math.floor((seconds - self.fixed) / self.per_token))


def _fastest(run: Callable[[], object], runs: int = 5) -> float:
    """Seconds of the fastest of `runs` calls (after one unmeasured): the work's cost, not a wait for a core."""
    run()
    fastest = math.inf
    for _ in range(runs):
        start = time.perf_counter()
        run()
        fastest = min(fastest, time.perf_counter() - start)
    return fastest


def measure_query_cost(model: MiniLM) -> QueryCost:
    """The line through the cost of texts of `PROBE_TOKENS` word pieces, on the calling thread."""

    def embed_one(tokens: int) -> Callable[[], object]:
        text = " ".join(["gate"] * (tokens - 2))  # one word piece each, between [CLS] and [SEP]
        return lambda: model.embed_encodings([model.encode(text)])

    short, long = (_fastest(embed_one(n)) for n in PROBE_TOKENS)
    per_token = max((long - short) / (PROBE_TOKENS[1] - PROBE_TOKENS[0]), 1e-6)
    return QueryCost(fixed=short - per_token * PROBE_TOKENS[0], per_token=per_token)
