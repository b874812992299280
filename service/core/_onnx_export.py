"""The embedder's transformer exported to ONNX once, for the onnx runtimes of the embedder.

torch's exporter traces the model in a few seconds; every worker and restart after the first
reuses the file. It lives in a folder named by a digest of everything that decides its graph
and weights (the model's files, torch's and onnxruntime's versions, this exporter's), written
under a file lock and renamed into place: concurrent workers export once, and no reader ever
sees half a file. int8 is onnxruntime's dynamic quantisation of the weight matrices (per output
channel; each batch's activations quantised on the fly).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

EXPORT_VERSION = 2  # bump when the exported graph changes: old exports are then never read
OPSET = 17
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT = "token_embeddings"
_MODEL_FILES = {".json", ".safetensors", ".bin", ".txt", ".model"}


def default_onnx_dir() -> Path:
    """Where exports are kept unless `PGENRM_EMBEDDER_ONNX_DIR` says otherwise."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "pgenrm" / "onnx"


def existing_export(source: str, root: Path, *, int8: bool) -> Path | None:
    """The ONNX file of the model in `source` if an earlier run exported it (no model needed)."""
    target = _target(source, root, int8)
    return target if target.exists() else None


def exported(model: Any, source: str, root: Path, *, int8: bool) -> Path:
    """The ONNX file of this sentence-transformers `model` loaded from `source` (float32, or
    int8 quantised from it), exported on first use."""
    target = _target(source, root, int8)
    if target.exists():
        return target
    folder = target.parent
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(folder / ".lock"):
        if not target.exists():  # another process may have written it while we waited
            plain = folder / "model.onnx"
            if not plain.exists():
                _write(plain, lambda path: _export(model, path))
            if int8:
                _write(target, lambda path: _quantise(plain, path))
    return target


def _target(source: str, root: Path, int8: bool) -> Path:
    return root / export_digest(source) / ("model-int8.onnx" if int8 else "model.onnx")


def export_digest(source: str) -> str:
    """A digest of what decides the export: the model's files (contents, not dates: a
    reinstall of the same weights reuses the export) and the versions of the tools (read from
    their installed metadata, which is what their `__version__` says: importing torch only
    to read it cost seconds at every start)."""
    root = Path(source)
    if not root.is_dir():
        raise FileNotFoundError(f"the onnx runtimes need a local model directory, not {source!r}")
    tools = f"{_version('torch')}\x1f{_version('onnxruntime')}"
    h = hashlib.sha256(f"{EXPORT_VERSION}\x1f{OPSET}\x1f{tools}".encode())
    for file in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in _MODEL_FILES):
        h.update(str(file.relative_to(root)).encode() + b"\x00")
        with file.open("rb") as data:
            h.update(hashlib.file_digest(data, "sha256").digest())
    return h.hexdigest()[:20]


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "absent"


def model_inputs(model: Any) -> list[str]:
    """The tokeniser's outputs the transformer reads, in the exported graph's order."""
    features = model.preprocess(["a"])
    return [name for name in INPUTS if name in features]


def _export(model: Any, path: Path) -> None:
    import torch

    transformer = model[0].auto_model
    names = model_inputs(model)

    class Hidden(torch.nn.Module):
        """The transformer's last hidden state: the token vectors that pooling reads."""

        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.transformer(
                **dict(zip(names, tensors, strict=True))
            ).last_hidden_state
            return out

    # Two texts of different lengths: the trace keeps the padding mask's path in the graph.
    features = model.preprocess(["a", "two words and more"])
    axes = {name: {0: "batch", 1: "tokens"} for name in (*names, OUTPUT)}
    # Eager attention traces to plain MatMul/Softmax: 20-25% faster under onnxruntime at 256
    # tokens than the traced SDPA path (its NaN guards run over every score), same vectors.
    attention = getattr(transformer.config, "_attn_implementation", None)
    settable = attention is not None and hasattr(transformer, "set_attn_implementation")
    if settable:
        transformer.set_attn_implementation("eager")
    # The TorchScript exporter (`dynamo=False`) needs only the onnx package (the dynamo one also
    # needs onnxscript); torch deprecates it, and tracing warns about branches the mask makes
    # constant, none of which changes the graph for right-padded inputs (the tests compare).
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Hidden().eval(),
                tuple(features[name] for name in names),
                str(path),
                dynamo=False,
                input_names=names,
                output_names=[OUTPUT],
                dynamic_axes=axes,
                opset_version=OPSET,
                do_constant_folding=True,
            )
    finally:
        if settable:
            transformer.set_attn_implementation(attention)


def _quantise(source: Path, path: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Only the weight matrices (MatMul with a constant operand). Per-channel scales kept DSP
    # texts within cosine 0.985 of float32 (median 0.994); per-tensor ones gave 0.88-0.97.
    quantize_dynamic(
        source,
        path,
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul"],
        extra_options={"MatMulConstBOnly": True},
    )


def _write(path: Path, make: Callable[[Path], None]) -> None:
    """Make the file under a temporary name, flush it to disk and rename it into place."""
    partial = path.with_name(f".{os.getpid()}.{path.name}")
    try:
        make(partial)
        with partial.open("rb+") as done:
            os.fsync(done.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (released by the kernel if one dies)."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
