"""One-time conversion of a local GGUF checkpoint to a safetensors folder.

transformers de-quantises a GGUF file on every load (~25 s for SmolLM2-135M, config
included) and ``save_pretrained`` refuses a GGUF-loaded model. The first load
rebuilds the model from its config, copies the de-quantised weights and saves it
under ``model_cache_root()/converted/``; later loads take ~2 s and give identical
weights (fp32 copies of the de-quantised tensors).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from ..atomic import atomic_dir

logger = logging.getLogger(__name__)


def _target(gguf: Path) -> Path:
    from .loading import converted_dir

    return converted_dir(gguf, gguf.stem)


def _convert(folder: Path, gguf_file: str, out: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    clean = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    clean.load_state_dict(loaded.state_dict())

    def build(tmp: Path) -> None:
        clean.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    atomic_dir(out, build, replace=False)  # a concurrent converter's copy wins


def converted_source(source: str, gguf_file: str) -> str | None:
    """Folder of the safetensors copy of ``source/gguf_file`` (converted on first use).

    Returns None for Hub repos or when conversion fails (the caller then loads the
    GGUF file directly).
    """
    folder = Path(source)
    gguf = folder / gguf_file
    if not gguf.is_file():
        return None
    out = _target(gguf)
    if not ((out / "config.json").is_file() and any(out.glob("*.safetensors"))):
        logger.info("converting %s to safetensors under %s (once)", gguf, out)
        try:
            _convert(folder, gguf_file, out)
        except Exception as err:  # fall back to loading the GGUF file directly
            logger.warning("GGUF conversion failed (%s); loading %s directly", err, gguf)
            return None
    return str(out)
