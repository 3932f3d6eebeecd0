"""Call counting for tests that check which code path a computation took."""

from __future__ import annotations

import pytest


def count_calls(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> list[int]:
    """Replace ``owner.name`` by a wrapper that appends 1 to the returned list per call
    (and otherwise calls through)."""
    calls: list[int] = []
    real = getattr(owner, name)

    def spy(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, spy)
    return calls
