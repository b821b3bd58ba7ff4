# Two entry points, both from a fresh clone: `make chat` and `make test`.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: chat test install lint browser eval

$(BIN)/gcm-qa: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'
	$(BIN)/pip check
	touch $@

install: $(BIN)/gcm-qa

chat: install
	$(BIN)/gcm-qa chat

# Debian's Chromium for the end-to-end browser test (Playwright drives it; it never downloads one).
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

lint: install
	$(BIN)/ruff check src tests eval

eval: install
	$(BIN)/gcm-qa eval --split test

test: install browser lint
	$(BIN)/python -m pytest -q
	$(BIN)/gcm-qa eval --split test
