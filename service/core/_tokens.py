"""The tokeniser the onnx runtimes feed, from sentence-transformers or without it.

Importing sentence-transformers (and with it transformers and torch) was most of a worker's
start-up here: ~6-9 s of ~15, and torch's memory in every worker. Once the transformer is
exported to ONNX, a plain mean-pooling text model (the bundled MiniLM) needs only its tokeniser,
which the `tokenizers` package reads from the model's `tokenizer.json`, configured as
sentence-transformers calls it: truncation to `max_seq_length` (longest first), padding to the
batch's longest text. Any model that is not plainly that is left to sentence-transformers;
`tests/core/test_tokens.py` checks the two give the same ids, masks and type ids.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
_TRANSFORMER = "sentence_transformers.models.Transformer"
_POOLING = "sentence_transformers.models.Pooling"
_NORMALIZE = "sentence_transformers.models.Normalize"


class Tokens(Protocol):
    @property
    def max_seq_length(self) -> int:
        """The most tokens a text is read to (longer ones are truncated)."""
        ...

    def preprocess(self, texts: Sequence[str]) -> dict[str, I64]:
        """The model's inputs for a batch: ids, attention mask (and type ids), padded."""
        ...

    def prefix_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's ids on its own (truncated, not padded), [CLS] to [SEP]."""
        ...


class ModelTokens:
    """The tokeniser of a loaded sentence-transformers model."""

    def __init__(self, model: Any) -> None:
        self._model = model

    @property
    def max_seq_length(self) -> int:
        return int(self._model.max_seq_length)

    def preprocess(self, texts: Sequence[str]) -> dict[str, I64]:
        features = self._model.preprocess(list(texts))
        return {k: v.numpy() for k, v in features.items() if hasattr(v, "numpy")}

    def prefix_ids(self, texts: Sequence[str]) -> list[list[int]]:
        ids: list[list[int]] = self._model.tokenizer(
            list(texts), truncation=True, max_length=self.max_seq_length
        )["input_ids"]
        return ids


class FileTokens:
    """A plain mean-pooling model's tokeniser read from its folder (see `plain_model`)."""

    def __init__(self, folder: Path, max_seq_length: int, dim: int) -> None:
        from tokenizers import Tokenizer

        self.max_seq_length = max_seq_length
        self.dim = dim
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_length=max_seq_length, strategy="longest_first")
        self._tokenizer.enable_padding()  # to the batch's longest ([PAD], id 0, on the right)

    def preprocess(self, texts: Sequence[str]) -> dict[str, I64]:
        encoded = self._tokenizer.encode_batch(list(texts))
        return {
            "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
        }

    def prefix_ids(self, texts: Sequence[str]) -> list[list[int]]:
        # Padding is on the right: a text's own ids are the unmasked ones.
        encoded = self._tokenizer.encode_batch(list(texts))
        return [e.ids[: sum(e.attention_mask)] for e in encoded]


def plain_model(folder: Path, max_seq_length: int | None) -> FileTokens | None:
    """The tokeniser of a sentence-transformers folder that is a BERT-style transformer with
    mean pooling (and optional normalisation) and a `tokenizer.json`; None for anything else
    (read through sentence-transformers itself)."""
    try:
        modules = [m["type"] for m in _json(folder / "modules.json")]
        pooling = _json(folder / "1_Pooling" / "config.json")
        config = _json(folder / "sentence_bert_config.json")
        limits = _json(folder / "tokenizer_config.json")
    except (OSError, ValueError, KeyError, TypeError):
        return None
    modes = {k: v for k, v in pooling.items() if k.startswith("pooling_mode_")}
    plain = (
        modules in ([_TRANSFORMER, _POOLING], [_TRANSFORMER, _POOLING, _NORMALIZE])
        and modes.get("pooling_mode_mean_tokens") is True
        and not any(v for k, v in modes.items() if k != "pooling_mode_mean_tokens")
        and set(pooling) <= {*modes, "word_embedding_dimension"}
        and config.get("do_lower_case") is False
        and isinstance(pooling.get("word_embedding_dimension"), int)
        and (folder / "tokenizer.json").is_file()
    )
    if not plain:
        return None
    length = max_seq_length or int(config["max_seq_length"])
    model_max = limits.get("model_max_length")
    if isinstance(model_max, int) and length > model_max:
        return None  # sentence-transformers' own cap would decide: leave it to it
    return FileTokens(folder, length, int(pooling["word_embedding_dimension"]))


def _json(path: Path) -> Any:
    return json.loads(path.read_text())
