"""Embedding cache: keys, hits without forward calls, resume, atomic writes, ranks."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from tp_harness.evaluation.data import DataBundle
from tp_harness.evaluation.embed import (
    EmbeddingCache,
    ModelSpec,
    cache_key,
    default_cache_dir,
    embed,
    embed_cached,
    embedding_key_fields,
    resolve_model,
)

pytestmark = pytest.mark.usefixtures("offline")
FIELDS = {"model_id": "m", "revision": "abc", "dataset": "fp", "layers": [0, 1]}


def _fake_compute(calls: list[np.ndarray], fail_after: int | None = None):
    def compute(rows: np.ndarray) -> dict[str, np.ndarray]:
        if fail_after is not None and len(calls) >= fail_after:
            raise KeyboardInterrupt("simulated interruption")
        calls.append(rows)
        return {
            "final": np.stack([rows, -rows], axis=1).astype(np.float32),
            "layer0": rows[:, None].astype(np.float32) * 0.5,
        }

    return compute


@contextlib.contextmanager
def count_forwards() -> Iterator[list[int]]:
    """Count forward calls of every torch module while active."""
    calls = [0]

    def hook(module: torch.nn.Module, args: object, output: object) -> None:
        calls[0] += 1

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        yield calls
    finally:
        handle.remove()


def test_key_is_canonical() -> None:
    assert cache_key(FIELDS) == cache_key(dict(reversed(list(FIELDS.items()))))
    assert cache_key(FIELDS) != cache_key({**FIELDS, "revision": "def"})
    assert len(cache_key(FIELDS)) == 32


def test_default_cache_dir_under_hf_home(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.delenv("TP_HARNESS_CACHE")
    assert default_cache_dir() == Path(constants.HF_HOME) / "tp_harness" / "embeddings"
    assert EmbeddingCache().cache_dir == default_cache_dir()


def test_get_or_compute_and_layout(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, shard_size=4)
    calls: list[np.ndarray] = []
    out = cache.get_or_compute(FIELDS, 10, _fake_compute(calls))
    assert [len(c) for c in calls] == [4, 4, 2]
    np.testing.assert_array_equal(out["final"][:, 0], np.arange(10))
    assert out["layer0"].shape == (10, 1)
    entry = cache.entry_dir(FIELDS)
    assert sorted(p.name for p in entry.iterdir()) == [
        "meta.json",
        "shard-00000.safetensors",
        "shard-00001.safetensors",
        "shard-00002.safetensors",
    ]
    again = cache.get_or_compute(FIELDS, 10, _fake_compute(calls))
    assert len(calls) == 3  # hit: nothing recomputed
    np.testing.assert_array_equal(again["final"], out["final"])


def test_resume_after_interruption(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, shard_size=3)
    calls: list[np.ndarray] = []
    with pytest.raises(KeyboardInterrupt):
        cache.get_or_compute(FIELDS, 11, _fake_compute(calls, fail_after=2))
    assert cache.missing_shards(FIELDS, 11) == [2, 3]
    resumed: list[np.ndarray] = []
    out = cache.get_or_compute(FIELDS, 11, _fake_compute(resumed))
    assert [r.tolist() for r in resumed] == [[6, 7, 8], [9, 10]]
    np.testing.assert_array_equal(out["final"][:, 0], np.arange(11))


def test_atomic_write_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import safetensors.numpy

    cache = EmbeddingCache(tmp_path, shard_size=4)

    def broken_save(tensors: dict, filename: str, metadata: dict | None = None) -> None:
        Path(filename).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.numpy, "save_file", broken_save)
    with pytest.raises(OSError, match="disk full"):
        cache.get_or_compute(FIELDS, 8, _fake_compute([]))
    files = sorted(p.name for p in cache.entry_dir(FIELDS).iterdir())
    assert files == ["meta.json"]  # no shard, no temp file
    monkeypatch.undo()
    assert cache.missing_shards(FIELDS, 8) == [0, 1]


def test_write_shard_checks_rows(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, shard_size=4)
    with pytest.raises(ValueError, match="expected"):
        cache.write_shard(FIELDS, 6, 1, {"final": np.zeros((4, 2))})
    with pytest.raises(IndexError):
        cache.write_shard(FIELDS, 6, 2, {"final": np.zeros((0, 2))})


def test_ranks_compute_disjoint_shards(tmp_path: Path) -> None:
    """Two 'ranks' split the missing shards; the result equals a one-process run."""
    cache = EmbeddingCache(tmp_path / "two", shard_size=2)
    todo = cache.missing_shards(FIELDS, 9)
    seen: list[list[np.ndarray]] = [[], []]
    for rank in range(2):
        cache.compute_missing(FIELDS, 9, _fake_compute(seen[rank]), shards=todo[rank::2])
    rows = sorted(int(r) for calls in seen for c in calls for r in c)
    assert rows == list(range(9))  # each row computed exactly once
    single = EmbeddingCache(tmp_path / "one", shard_size=2).get_or_compute(
        FIELDS, 9, _fake_compute([])
    )
    two = cache.load(FIELDS, 9)
    for key in single:
        np.testing.assert_array_equal(two[key], single[key])


def test_embed_cached_hit_runs_no_forward(
    tmp_path: Path, tiny_bert_dir: Path, text_data: DataBundle
) -> None:
    spec = ModelSpec(str(tiny_bert_dir), layers="all", name="b", batch_size=3)
    cache = EmbeddingCache(tmp_path, shard_size=5)
    with count_forwards() as first:
        out = embed_cached(spec, text_data, cache=cache)
    assert first[0] > 0 and out is not None
    direct = embed(spec, text_data)
    assert sorted(out) == sorted(direct)
    for key in direct:
        np.testing.assert_allclose(out[key], direct[key], atol=1e-6)
    with count_forwards() as second:
        again = embed_cached(spec.replace(batch_size=7, name="b"), text_data, cache=cache)
    assert second[0] == 0 and again is not None
    for key in out:
        np.testing.assert_array_equal(again[key], out[key])


def test_embed_cached_resume_and_rename(
    tmp_path: Path, tiny_bert_dir: Path, text_data: DataBundle
) -> None:
    cache = EmbeddingCache(tmp_path, shard_size=4)  # 14 rows -> 4 shards
    res = resolve_model(ModelSpec(str(tiny_bert_dir), name="first"))
    assert embed_cached(res, text_data, cache=cache, shards=[0, 2], load=False) is None
    fields = embedding_key_fields(res, text_data)
    assert cache.missing_shards(fields, len(text_data)) == [1, 3]
    with count_forwards() as calls:
        out = embed_cached(ModelSpec(str(tiny_bert_dir), name="renamed"), text_data, cache=cache)
    assert calls[0] > 0 and out is not None and list(out) == ["renamed"]
    np.testing.assert_allclose(out["renamed"], embed(res, text_data)["first"], atol=1e-6)


def test_key_fields_separate_settings(tiny_bert_dir: Path, text_data: DataBundle) -> None:
    base = embedding_key_fields(resolve_model(ModelSpec(str(tiny_bert_dir))), text_data)
    for change in ({"pooling": "cls"}, {"dtype": "bf16"}, {"max_length": 8}, {"layers": [1]}):
        other = embedding_key_fields(
            resolve_model(ModelSpec(str(tiny_bert_dir), **change)), text_data
        )
        assert cache_key(other) != cache_key(base), change
    same = embedding_key_fields(
        resolve_model(ModelSpec(str(tiny_bert_dir), batch_size=3, name="x")), text_data
    )
    assert cache_key(same) == cache_key(base)


# ----------------------------------------------------------------------------- issue 16 (6, 15)


def _filled(tmp_path: Path, n: int = 10) -> tuple[EmbeddingCache, dict[str, np.ndarray]]:
    cache = EmbeddingCache(tmp_path, shard_size=4)
    return cache, cache.get_or_compute(FIELDS, n, _fake_compute([]))


def test_altered_bytes_are_detected_and_recomputed(tmp_path: Path) -> None:
    """Finding 6: bytes altered inside a shard's data gave scores off by 4% silently."""
    from tp_harness.evaluation.embed.cache import CorruptCacheWarning

    cache, good = _filled(tmp_path)
    path = cache.shard_path(FIELDS, 1)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x40  # one bit inside the last tensor's data
    path.write_bytes(bytes(data))
    fresh = EmbeddingCache(tmp_path, shard_size=4)  # a new process: nothing memoised
    calls: list[np.ndarray] = []
    with pytest.warns(CorruptCacheWarning, match=rf"{path}.*checksum mismatch"):
        out = fresh.get_or_compute(FIELDS, 10, _fake_compute(calls))
    assert [c.tolist() for c in calls] == [[4, 5, 6, 7]]  # only the bad shard
    for k in good:
        np.testing.assert_array_equal(out[k], good[k])


@pytest.mark.parametrize("cut", [5, 60, -7])
def test_truncated_shards_are_recomputed_not_raised(tmp_path: Path, cut: int) -> None:
    """Finding 6: a truncated shard gave a raw SafetensorError (no path) on every rerun."""
    from tp_harness.evaluation.embed.cache import CorruptCacheWarning

    cache, good = _filled(tmp_path)
    path = cache.shard_path(FIELDS, 2)
    path.write_bytes(path.read_bytes()[:cut])
    calls: list[np.ndarray] = []
    with pytest.warns(CorruptCacheWarning, match=str(path)):
        out = EmbeddingCache(tmp_path, shard_size=4).get_or_compute(
            FIELDS, 10, _fake_compute(calls)
        )
    assert [c.tolist() for c in calls] == [[8, 9]]
    np.testing.assert_array_equal(out["final"], good["final"])


def test_invalid_meta_is_reported_with_its_path_and_rebuilt(tmp_path: Path) -> None:
    """Finding 6: an invalid meta.json said 'Expecting value: line 2' with no path."""
    from tp_harness.evaluation.embed.cache import CorruptCacheWarning

    cache, good = _filled(tmp_path)
    meta = cache.entry_dir(FIELDS) / "meta.json"
    meta.write_text('{"format": 1,\n')
    calls: list[np.ndarray] = []
    with pytest.warns(CorruptCacheWarning, match=rf"{meta}.*unreadable metadata"):
        out = EmbeddingCache(tmp_path, shard_size=4).get_or_compute(
            FIELDS, 10, _fake_compute(calls)
        )
    assert calls == []  # the shards themselves were fine
    np.testing.assert_array_equal(out["final"], good["final"])
    assert json.loads(meta.read_text())["shard_size"] == 4


def test_a_shard_changed_after_the_check_is_never_used(tmp_path: Path) -> None:
    cache, _ = _filled(tmp_path)
    assert cache.missing_shards(FIELDS, 10) == []
    path = cache.shard_path(FIELDS, 0)
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    os.utime(path, ns=(1, 1))  # a different mtime: the memo does not vouch for it
    with pytest.raises(ValueError, match=rf"{path} is corrupt.*run again"), pytest.warns():
        cache.load(FIELDS, 10)
    assert not path.exists()


def test_shard_size_adapts_so_a_kill_loses_at_most_an_eighth(tmp_path: Path) -> None:
    """Finding 15: 1024-row shards meant a kill on the 979 bundled reviews redid everything."""
    from tp_harness.evaluation.embed.cache import adaptive_shard_size

    assert adaptive_shard_size(979) == 123 and adaptive_shard_size(10**6) == 1024
    assert adaptive_shard_size(5) == 1
    cache = EmbeddingCache(tmp_path)
    calls: list[np.ndarray] = []
    with pytest.raises(KeyboardInterrupt):
        cache.get_or_compute(FIELDS, 979, _fake_compute(calls, fail_after=5))
    assert cache.num_shards(FIELDS, 979) == 8
    assert len(cache.missing_shards(FIELDS, 979)) == 3
    resumed: list[np.ndarray] = []
    cache.get_or_compute(FIELDS, 979, _fake_compute(resumed))
    assert sum(len(r) for r in resumed) == 979 - 5 * 123


def test_shards_get_the_users_umask(tmp_path: Path) -> None:
    """Finding 16: shards were written 0600."""
    import stat

    old = os.umask(0o022)
    try:
        cache, _ = _filled(tmp_path)
    finally:
        os.umask(old)
    for p in cache.entry_dir(FIELDS).iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o644, p
