"""Shipped vectors: text hash -> embedding, one file per model, read before anything is embedded.

EmbeddingGemma needs minutes on two cores to embed the report's passages and sentences, and a fresh
clone (or a CI run) would pay that before its first answer. The vectors of the shipped corpus are
therefore committed under ``index/vectors/``, keyed by the model's identity and the hash of each
exact text, not by the whole index recipe: a change to the cleaner or chunker still reuses every
passage whose text it left alone, and a different model uses none of them.

The file is a plain ``.npz`` (no pickle): ``identity`` (the model), ``keys`` (32-hex text hashes)
and ``vectors`` in float16, which halves the file; cosine to the float32 vectors stays above 0.9999.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np


def path_for(folder: Path, model_identity: str) -> Path:
    """One file per model name ('packaged:embeddinggemma-300m@…' -> embeddinggemma-300m.npz)."""
    name = model_identity.split("@", 1)[0].removeprefix("packaged:")
    return folder / (re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") + ".npz")


def load(folder: Path, model_identity: str) -> dict[str, np.ndarray]:
    """The shipped vectors of this model; empty when there are none, they belong to other weights,
    or the file cannot be read (the build then embeds, as without them)."""
    path = path_for(folder, model_identity)
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["identity"]) != model_identity:
                return {}
            keys = data["keys"].tolist()
            vectors = data["vectors"].astype(np.float32)
    except (OSError, ValueError, KeyError):
        return {}
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)  # re-normalise after float16
    return dict(zip(keys, vectors, strict=True))


def save(folder: Path, model_identity: str, vectors: dict[str, np.ndarray]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = path_for(folder, model_identity)
    keys = sorted(vectors)
    matrix = np.stack([vectors[k] for k in keys]).astype(np.float16)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, identity=np.array(model_identity), keys=np.array(keys), vectors=matrix)
    tmp.replace(path)
    return path
