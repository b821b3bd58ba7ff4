"""Shipped vectors: a plain .npz keyed by model identity and text hash."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gcm_qa import vector_store

IDENTITY = "packaged:some-model@sha256:0123456789abcdef"


def _vectors(n: int, dim: int = 8) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    m = rng.normal(size=(n, dim)).astype(np.float32)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    return {f"{i:032x}": m[i] for i in range(n)}


def test_round_trip_keeps_every_vector_close(tmp_path: Path) -> None:
    vectors = _vectors(20)
    path = vector_store.save(tmp_path, IDENTITY, vectors)
    assert path.name == "some-model.npz"
    loaded = vector_store.load(tmp_path, IDENTITY)
    assert loaded.keys() == vectors.keys()
    cosines = [float(loaded[k] @ v) for k, v in vectors.items()]
    assert min(cosines) > 0.9999  # float16 on disk, re-normalised on load
    assert all(v.dtype == np.float32 for v in loaded.values())


def test_other_weights_under_the_same_name_are_not_used(tmp_path: Path) -> None:
    vector_store.save(tmp_path, IDENTITY, _vectors(3))
    assert vector_store.load(tmp_path, "packaged:some-model@sha256:ffffffffffffffff") == {}


def test_missing_or_damaged_files_mean_no_vectors(tmp_path: Path) -> None:
    assert vector_store.load(tmp_path, IDENTITY) == {}
    vector_store.path_for(tmp_path, IDENTITY).write_bytes(b"not an npz")
    assert vector_store.load(tmp_path, IDENTITY) == {}


def test_a_path_model_gets_a_safe_file_name(tmp_path: Path) -> None:
    assert vector_store.path_for(tmp_path, "/models/my model/v2").name == "models_my_model_v2.npz"
