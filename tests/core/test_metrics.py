from __future__ import annotations

import uuid

from ragapi.core.metrics import TenantLabels


def test_tenant_labels_are_bounded() -> None:
    labels = TenantLabels(2)
    first, second, third = (uuid.uuid4() for _ in range(3))
    assert [labels(first), labels(second), labels(third)] == [str(first), str(second), "other"]
    assert labels(first) == str(first)  # a known tenant keeps its label
    assert TenantLabels(0)(first) == "all"
