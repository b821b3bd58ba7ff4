"""The ONNX query path: exported once from the real model, checked against sentence-transformers, used
for questions without torch, and never trusted once the weights change.

The export and the comparison run for real (torch.onnx.export, ONNX Runtime, tokenizers) on
all-MiniLM-L6-v2, which exports in seconds; the default encoder's export (made by ``make models``)
is compared on the same hand-made questions."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import REPORT, ROOT

from gcm_qa import models
from gcm_qa.embedder import SentenceTransformerEmbedder, load_embedder, resolve
from gcm_qa.models import ModelError
from gcm_qa.onnx_encoder import MIN_COSINE, STAMP_FILE, OnnxEncoder, _sentencepiece_twin, exported
from gcm_qa.settings import EmbeddingSettings, Settings

pytestmark = pytest.mark.slow  # exports a model and starts processes

MINILM = models.PACKAGED["all-MiniLM-L6-v2"]
QUESTIONS = [
    "Which countries regularised migrants?",
    "¿Qué medidas tomaron los gobiernos para proteger a las personas migrantes durante la pandemia?",
    "labour mobility",
    "How do consular services help nationals abroad, and what do they offer to families who stayed at home "
    "and depend on the money their relatives send back every month?",
]


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model cache where MiniLM is installed and exported, as 'gcm-qa models install' does."""
    cache = tmp_path_factory.mktemp("onnx-cache")
    messages: list[str] = []
    models.install(MINILM, cache, echo=messages.append)
    assert any("exported to" in m for m in messages), messages
    return cache


def _embedder(cache: Path, backend: str) -> SentenceTransformerEmbedder:
    # float32 for the comparison: the export is float32, and bfloat16 (where the CPU has it) differs by itself
    settings = EmbeddingSettings(model=MINILM.name, backend=backend, dtype="float32")
    embedder = load_embedder(settings, cache, resolve(settings, cache))
    assert isinstance(embedder, SentenceTransformerEmbedder)
    return embedder


def test_export_matches_sentence_transformers_and_leaves_the_full_model_unloaded(onnx_cache: Path) -> None:
    fast = _embedder(onnx_cache, "onnx")
    full = _embedder(onnx_cache, "sentence-transformers")
    ours, theirs = fast.encode_queries(QUESTIONS), full.encode_queries(QUESTIONS)
    assert ours.shape == theirs.shape == (len(QUESTIONS), 384) and ours.dtype == np.float32
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert float(np.min(np.sum(ours * theirs, axis=1))) >= MIN_COSINE
    # one at a time (no padding) gives what the padded batch gave
    assert float(ours[3] @ fast.encode_queries([QUESTIONS[3]])[0]) > 0.99999
    passages = ["Migrants sent remittances home.", QUESTIONS[1] * 3, "Regularización migratoria en 2021."]
    documents = fast.encode_documents(passages)
    assert documents.shape == (3, 384)
    assert float(np.min(np.sum(documents * full.encode_documents(passages), axis=1))) >= MIN_COSINE
    assert fast._model is None  # neither questions nor documents loaded torch's model


def test_a_second_install_does_not_export_again(onnx_cache: Path) -> None:
    messages: list[str] = []
    models.install(MINILM, onnx_cache, echo=messages.append)
    assert not any("export" in m for m in messages), messages


def test_an_export_of_other_weights_is_not_used(onnx_cache: Path, tmp_path: Path) -> None:
    folder = models.location(MINILM, onnx_cache)
    assert folder is not None
    copy = tmp_path / "model"
    shutil.copytree(folder, copy)
    weights = models.weights_stamp(copy)
    assert exported(copy, weights) is not None
    stamp = copy / "onnx" / STAMP_FILE
    record = json.loads(stamp.read_text(encoding="utf-8"))
    stamp.write_text(json.dumps({**record, "weights": "other weights"}), encoding="utf-8")
    assert exported(copy, weights) is None
    assert exported(copy, "") is None  # weights of unknown origin: never matched


def test_asking_for_onnx_without_an_export_names_the_command(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="gcm-qa models install all-MiniLM-L6-v2"):
        _embedder(tmp_path, "onnx")  # MiniLM extracted here, never exported


def test_auto_without_an_export_falls_back_to_sentence_transformers(tmp_path: Path) -> None:
    embedder = _embedder(tmp_path, "auto")
    assert embedder.onnx is None and embedder.encode_queries(["remittances"]).shape == (1, 384)


def test_a_build_and_a_question_in_a_fresh_process_never_import_torch(onnx_cache: Path, tmp_path: Path) -> None:
    """What makes a cold 'gcm-qa ask' fast, and a build lean: the index is built (through OpenVINO),
    and the question is answered, in a process where torch, transformers and sentence-transformers
    are never imported."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    text = REPORT.read_text(encoding="utf-8")
    (corpus / "excerpt.txt").write_text(text[:6000], encoding="utf-8")
    env_settings = {"paths": {"corpus_dir": str(corpus), "index_dir": str(tmp_path / "index"),
                              "cache_dir": str(onnx_cache), "vectors_dir": str(tmp_path / "vectors")},
                    "embedding": {"model": MINILM.name, "openvino_min_texts": 1}}  # OpenVINO builds
    script = (
        "import json, sys\n"
        "from gcm_qa.engine import Engine\n"
        "from gcm_qa.settings import Settings\n"
        f"engine = Engine(Settings.model_validate(json.loads({json.dumps(json.dumps(env_settings))})))\n"
        "report = engine.build()\n"
        "assert report.embedded > 0 and engine.embedder.onnx.openvino is not None, report\n"
        "answer = engine.ask('What does the report review?')\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules)\n"
        "print(json.dumps({'heavy': heavy, 'passages': len(answer.passages), 'encode': answer.timings_ms['encode']}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=False,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["heavy"] == [] and result["passages"] > 0 and result["encode"] > 0


def test_the_default_encoders_export_matches_it() -> None:
    """EmbeddingGemma's export, made by 'make models' (which 'make test' runs first)."""
    cache = Settings().paths.cache_dir
    gemma = models.PACKAGED["embeddinggemma-300m"]
    if models.onnx_folder(gemma, cache) is None:
        pytest.fail("EmbeddingGemma or its ONNX export is not installed: run 'make models'")
    fast = load_embedder(EmbeddingSettings(model=gemma.name, backend="onnx"), cache)
    full = load_embedder(EmbeddingSettings(model=gemma.name, backend="sentence-transformers",
                                           dtype="float32"), cache)
    cosine = np.sum(fast.encode_queries(QUESTIONS) * full.encode_queries(QUESTIONS), axis=1)
    assert float(cosine.min()) >= MIN_COSINE


def _gemma_folder() -> Path:
    gemma = models.PACKAGED["embeddinggemma-300m"]
    folder = models.location(gemma, Settings().paths.cache_dir)
    if folder is None or models.onnx_folder(gemma, Settings().paths.cache_dir) is None:
        pytest.fail("EmbeddingGemma or its ONNX export is not installed: run 'make models'")
    return folder


def test_the_default_encoder_tokenizes_with_sentencepiece_exactly_as_its_tokenizer_json() -> None:
    """SentencePiece loads in a tenth of a second where tokenizer.json takes seconds; the ids must be
    the very ids tokenizers gives, special tokens and truncation included."""
    from tokenizers import Tokenizer

    folder = _gemma_folder()
    encoder = OnnxEncoder(folder / "onnx")
    assert encoder._twin is not None and type(encoder.tokenizer).__name__ == "SentencePieceProcessor"
    reference = Tokenizer.from_file(str(folder / "tokenizer.json"))
    reference.no_padding()
    reference.enable_truncation(encoder.max_tokens)
    texts = ["Los Estados   informaron\nsobre\t la regularización (2019-2021).",
             "  ﬂows of 3,5 millones — “refugees” & migrants ",
             "Migrants' remittances " * 900]  # about 3,600 tokens: cut at the encoder's length
    ours = encoder.token_ids(texts)
    assert ours == [e.ids for e in reference.encode_batch(texts)]
    assert len(ours[2]) == encoder.max_tokens and ours[2][-1] == reference.encode("").ids[-1]


def test_a_sentencepiece_model_that_tokenizes_otherwise_is_not_used(tmp_path: Path) -> None:
    """tokenizer.json reads '<eos>' written in a text as the special token; SentencePiece reads the
    characters. Where they differ on a checked text, the export keeps tokenizer.json."""
    folder = _gemma_folder()
    agree = _sentencepiece_twin(folder, tmp_path, ["Objective 23: international cooperation"], [], 2048)
    assert agree is not None and (tmp_path / "tokenizer.model").is_file()
    (tmp_path / "tokenizer.model").unlink()
    differ = _sentencepiece_twin(folder, tmp_path, ["a text that writes <eos> in it"], [], 2048)
    assert differ is None and not (tmp_path / "tokenizer.model").exists()


PASSAGES = [
    "Migrants sent remittances home every month.",
    "Regularización migratoria de personas venezolanas en 2021.",
    "The review met in Santiago; forty States took part, and civil society spoke at every session "
    "about detention, access to justice and the rights of children on the move.",
    "Objective 23",
    "Los consulados ofrecieron asistencia jurídica a sus nacionales en el exterior durante la pandemia.",
]


def _onnx_encoder(cache: Path, **kwargs: object) -> OnnxEncoder:
    onnx = models.onnx_folder(MINILM, cache)
    assert onnx is not None
    return OnnxEncoder(onnx, **kwargs)  # type: ignore[arg-type]


def test_a_build_large_enough_is_embedded_by_openvino_with_onnx_runtimes_vectors(onnx_cache: Path) -> None:
    encoder = _onnx_encoder(onnx_cache, openvino_min_texts=4, precision="float32")
    few = encoder.encode(PASSAGES[:3], "document", batch_size=2, build=True)
    assert encoder.openvino is None  # three texts do not repay compiling
    reference = encoder.encode(PASSAGES, "document", batch_size=2)  # not a build's: ONNX Runtime
    assert encoder.openvino is None
    ours = encoder.encode(PASSAGES, "document", batch_size=2, build=True)
    assert encoder.openvino is not None and encoder.openvino.precision == "f32"
    assert ours.dtype == np.float32 and np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert float(np.min(np.sum(ours * reference, axis=1))) > 0.99999
    assert np.allclose(few, reference[:3], atol=1e-5)
    # ONNX Runtime's copy of the model was let go; a question makes it again, with the same vectors
    assert encoder.session is None
    question = encoder.encode(QUESTIONS, "query", batch_size=2)
    assert encoder.session is not None and encoder.openvino is not None
    assert np.allclose(question, _onnx_encoder(onnx_cache).encode(QUESTIONS, "query", batch_size=2), atol=1e-6)
    # once compiled, a build of one text goes through OpenVINO too, and gives the same vector
    assert encoder.graph(1) is encoder.openvino
    assert float(encoder.encode(PASSAGES[2:3], "document", batch_size=2, build=True)[0] @ reference[2]) > 0.99999


def test_the_settings_choose_what_runs_a_builds_texts(onnx_cache: Path) -> None:
    def embedder(**embedding: object) -> SentenceTransformerEmbedder:
        settings = EmbeddingSettings(model=MINILM.name, backend="onnx", openvino_min_texts=2, **embedding)
        loaded = load_embedder(settings, onnx_cache, resolve(settings, onnx_cache))
        assert isinstance(loaded, SentenceTransformerEmbedder) and loaded.onnx is not None
        return loaded

    default = embedder()
    default.encode_queries(PASSAGES)  # questions, however many, stay with ONNX Runtime
    checked = default.encode_documents(PASSAGES)  # texts embedded while answering, not by a build: the same
    assert default.onnx is not None and default.onnx.openvino is None
    default.encode_documents(PASSAGES, build=True)
    assert default.onnx.openvino is not None
    assert default.onnx.session is None  # let go when OpenVINO compiled; texts not of a build make it again
    assert np.array_equal(default.encode_documents(PASSAGES), checked) and default.onnx.session is not None
    plain = embedder(build_runtime="onnxruntime")
    plain.encode_documents(PASSAGES, build=True)
    assert plain.onnx is not None and plain.onnx.openvino is None
    exact = embedder(dtype="float32")
    exact.encode_documents(PASSAGES, build=True)
    assert exact.onnx is not None and exact.onnx.openvino is not None and exact.onnx.openvino.precision == "f32"


def test_a_graph_openvino_cannot_compile_is_named_and_onnx_runtime_takes_over(onnx_cache: Path,
                                                                             tmp_path: Path) -> None:
    """The export replaced on disk after the process loaded it: OpenVINO's failure is one warning
    naming the file, ONNX Runtime is asked to take over, and it names the file in its turn."""
    onnx = models.onnx_folder(MINILM, onnx_cache)
    assert onnx is not None
    copy = tmp_path / "onnx"
    shutil.copytree(onnx, copy)
    encoder = OnnxEncoder(copy, openvino_min_texts=1)
    reference = encoder.encode(PASSAGES, "document", batch_size=4)
    (copy / "model.onnx").write_bytes(b"\x08\x07 not a graph")
    with (pytest.warns(RuntimeWarning, match=r"OpenVINO cannot compile .*model\.onnx.*embedding with ONNX Runtime"),
          pytest.raises(Exception, match=r"model\.onnx")):
        encoder.encode(PASSAGES, "document", batch_size=4, build=True)
    assert encoder.openvino is None and encoder.openvino_error
    shutil.copy(onnx / "model.onnx", copy / "model.onnx")  # mended: ONNX Runtime embeds, and OpenVINO
    with warnings.catch_warnings():  # is not tried again (one warning, not one per build)
        warnings.simplefilter("error")
        vectors = encoder.encode(PASSAGES, "document", batch_size=4, build=True)
    assert encoder.openvino is None and np.allclose(vectors, reference, atol=1e-6)


def test_the_default_encoders_build_through_openvino_stays_within_the_exports_bound() -> None:
    """EmbeddingGemma as a build runs it: OpenVINO at its own precision (bfloat16 where the CPU has it)."""
    encoder = OnnxEncoder(_gemma_folder() / "onnx", openvino_min_texts=1)
    reference = encoder.encode(PASSAGES + QUESTIONS, "document", batch_size=4)
    ours = encoder.encode(PASSAGES + QUESTIONS, "document", batch_size=4, build=True)
    assert encoder.openvino is not None
    assert float(np.min(np.sum(ours * reference, axis=1))) >= MIN_COSINE
