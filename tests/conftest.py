"""Shared fixtures: tiny random models (fixed seeds) saved with ``save_pretrained``.

Every model folder is loaded back through the same ``from_pretrained`` path users
hit. No test touches the Hugging Face Hub.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

WORDS = (
    "the a drug worked well for my pain but side effects were bad and i felt sick "
    "tired happy great terrible doctor said take it twice daily no more headache "
    "sleep better worse never again"
).split()
SENTENCES = [
    "the drug worked well",
    "side effects were bad and i felt sick",
    "great",
    "my doctor said take it twice daily and my pain is better",
    "terrible never again",
    "i felt tired but happy",
    "no more headache",
    "sleep better",
    "worse",
    "it worked for my pain but the side effects were terrible and i felt sick and tired",
    "take it daily",
    "happy happy happy",
    "the doctor said no",
    "a great drug for headache",
]
LABELS = [1, 0, 1, 1, 0, 1, 1, 1, 0, 0, 1, 1, 0, 1]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "<eos>"]


@pytest.fixture(params=["compiled", "torch"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test on the numba CPU kernels and on the torch implementation.

    ``torch`` sets ``TP_HARNESS_NO_JIT=1``, which every caller reads at call time; the
    torch code is also what runs on CUDA.
    """
    if request.param == "torch":
        monkeypatch.setenv("TP_HARNESS_NO_JIT", "1")
    else:
        from tp_harness.core import compiled as _jit
        from tp_harness.core import kernels, moments

        if not _jit.enabled():
            pytest.skip("numba is not installed")
        monkeypatch.setattr(moments, "FUSED_MIN_WORK", 0)  # the compiled epilogue at any size
        monkeypatch.setattr(kernels, "COMPILED_FACTOR_MIN_ROWS", 0)  # and the compiled build
    return str(request.param)


@pytest.fixture(scope="session")
def tp_cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Session folder standing in for ``$HF_HOME/tp_harness``."""
    return tmp_path_factory.mktemp("tp_harness_cache")


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tp_cache_root: Path) -> None:
    """``HF_HUB_OFFLINE=1`` and ``TP_HARNESS_CACHE`` in a temp folder for one test.

    Use with ``pytestmark = pytest.mark.usefixtures("offline")``; the code reads
    ``HF_HUB_OFFLINE`` at call time, so other test files keep their own setting.
    """
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TP_HARNESS_CACHE", str(tp_cache_root))


def _vocab() -> list[str]:
    return SPECIALS + sorted(set(WORDS))


def _bert_tokenizer(folder: Path) -> None:
    from transformers import BertTokenizerFast

    vocab = {w: i for i, w in enumerate(_vocab())}
    (folder / "vocab.txt").write_text("\n".join(_vocab()) + "\n")
    # ``vocab=`` (transformers 5 ignores ``vocab_file=`` and would map every word to [UNK],
    # making every text the same and the tiny model's embeddings degenerate)
    tok = BertTokenizerFast(vocab=vocab, do_lower_case=True)
    assert tok("drug worked")["input_ids"][1:3] == [vocab["drug"], vocab["worked"]]
    tok.save_pretrained(folder)


def _word_tokenizer(folder: Path, padding_side: str = "right") -> None:
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(WordLevel({w: i for i, w in enumerate(_vocab())}, unk_token="[UNK]"))
    tok.pre_tokenizer = Whitespace()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        eos_token="<eos>",
        padding_side=padding_side,
    )
    fast.save_pretrained(folder)


def _save(model: object, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)  # type: ignore[attr-defined]
    return folder


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random 2-layer BERT (hidden 32) with a WordPiece tokenizer."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=len(_vocab()),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
    )
    folder = _save(BertModel(cfg), tmp_path_factory.mktemp("tiny-bert"))
    _bert_tokenizer(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_st_dir(tiny_bert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny BERT as a sentence-transformers repo: CLS pooling + Normalize, 6 tokens max."""
    import shutil

    folder = tmp_path_factory.mktemp("tiny-st")
    shutil.copytree(tiny_bert_dir, folder, dirs_exist_ok=True)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
        {
            "idx": 2,
            "name": "2",
            "path": "2_Normalize",
            "type": "sentence_transformers.models.Normalize",
        },
    ]
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps(
            {
                "word_embedding_dimension": 32,
                "pooling_mode_cls_token": True,
                "pooling_mode_mean_tokens": False,
                "pooling_mode_max_tokens": False,
                "pooling_mode_mean_sqrt_len_tokens": False,
            }
        )
    )
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 6}))
    return folder


def _causal(arch: str, folder: Path) -> Path:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(1)
    n = len(_vocab())
    eos = _vocab().index("<eos>")
    if arch == "gpt2":
        model: object = GPT2LMHeadModel(
            GPT2Config(
                vocab_size=n,
                n_embd=32,
                n_layer=2,
                n_head=2,
                n_positions=64,
                bos_token_id=eos,
                eos_token_id=eos,
                pad_token_id=0,
            )
        )
    else:
        model = LlamaForCausalLM(
            LlamaConfig(
                vocab_size=n,
                hidden_size=32,
                num_hidden_layers=3,
                num_attention_heads=2,
                num_key_value_heads=1,
                intermediate_size=48,
                max_position_embeddings=64,
                bos_token_id=eos,
                eos_token_id=eos,
                pad_token_id=0,
            )
        )
    _save(model, folder)
    _word_tokenizer(folder)
    return folder


@pytest.fixture(scope="session", params=["gpt2", "llama"])
def tiny_causal_dir(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Random GPT-2 (2 layers) or Llama (3 layers) causal LM with a word tokenizer."""
    return _causal(request.param, tmp_path_factory.mktemp(f"tiny-{request.param}"))


def _vision(arch: str, folder: Path) -> Path:
    import torch
    from transformers import (
        BitImageProcessorPil,
        Dinov2Config,
        Dinov2Model,
        ViTConfig,
        ViTImageProcessorPil,
        ViTModel,
    )

    torch.manual_seed(2)
    common = {
        "image_size": 32,
        "patch_size": 8,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
    }
    if arch == "vit":
        model: object = ViTModel(ViTConfig(intermediate_size=37, **common))
        proc: object = ViTImageProcessorPil(size={"height": 32, "width": 32})
    else:
        model = Dinov2Model(Dinov2Config(mlp_ratio=2, **common))
        proc = BitImageProcessorPil(
            size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
        )
    _save(model, folder)
    proc.save_pretrained(folder)  # type: ignore[attr-defined]
    return folder


@pytest.fixture(scope="session", params=["vit", "dinov2"])
def tiny_vision_dir(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Random ViT or DINOv2 (32x32 images, patch 8, 2 layers) with a PIL processor."""
    return _vision(request.param, tmp_path_factory.mktemp(f"tiny-{request.param}"))


@pytest.fixture(scope="session")
def text_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 14-row csv with ``text`` and ``label`` columns."""
    import csv

    path = tmp_path_factory.mktemp("text-data") / "reviews.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "text", "label"])
        writer.writerows((i, s, y) for i, (s, y) in enumerate(zip(SENTENCES, LABELS, strict=True)))
    return path


@pytest.fixture(scope="session")
def text_data(text_csv: Path):  # -> DataBundle
    """The 14 test sentences as a :class:`~tp_harness.evaluation.data.DataBundle`."""
    from tp_harness.evaluation.data import load_data

    return load_data(str(text_csv))


@pytest.fixture(scope="session")
def image_data():  # -> DataBundle
    """12 scikit-learn digits (8x8 grayscale) as a DataBundle."""
    from tp_harness.evaluation.data import load_data

    return load_data("bundled:digits", num_examples=12, seed=0)


# words the tiny test tokenizer knows (tests/conftest.py), split into three "topics"
TOPICS = {
    0: "drug worked well great happy better sleep doctor".split(),
    1: "side effects bad sick tired terrible worse never".split(),
    2: "take it twice daily pain headache no more".split(),
}


@pytest.fixture(scope="module")
def topic_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """90 short texts from 3 topics, labels in a ``topic`` column."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("topics") / "topics.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "topic"])
        for i in range(90):
            y = i % 3
            words = (
                rng.choice(TOPICS[y], size=6).tolist()
                + rng.choice(TOPICS[(y + 1) % 3], size=2).tolist()
            )
            w.writerow([" ".join(words), y])
    return path


@pytest.fixture
def silent_hub(monkeypatch: pytest.MonkeyPatch, offline: None) -> Iterator[object]:
    """HF_ENDPOINT pointed at a loopback server that accepts and never answers, Hub access
    allowed (HF_HUB_OFFLINE unset): the hanging endpoint of issue 16, finding 8."""
    from huggingface_hub import constants

    from tests.hub_server import SilentServer

    server = SilentServer()
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", server.url)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection attempt fails the test ('fails fast' = no network call at all)."""
    import socket

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a network connection was attempted")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
