# The one entry point of the book. `make help` lists the targets.
#
# Each framework lives in its own virtual environment under envs/ (their pins
# conflict: MXNet 1.9.1 needs NumPy < 1.24, TensorFlow 2.21 and JAX 0.10.2 a NumPy 2), with its
# own Jupyter kernel named after it. envs/tools holds the build and test tooling
# (jupytext, nbclient, nbval, pytest) and the kernel specs.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
# The framework table lives in d2l_shim (TABLE); its package file imports no framework.
FRAMEWORKS := $(shell $(PYTHON) -c "import d2l_shim; print(*d2l_shim.FRAMEWORKS)")
CHAPTERS := $(wildcard chapters/*.md)
CHAPTER_NAMES := $(basename $(notdir $(CHAPTERS)))
ENVS := envs
BUILD := build
TOOLS_PY := $(ENVS)/tools/bin/python
# pip prints a warning for every package its extra local indexes lack; keep the
# console readable and the full log in the environment folder.
PIP_QUIET := --quiet --disable-pip-version-check

# The profile of every notebook run: quick (embedded data, CPU-sized) or full.
export D2L_PROFILE ?= quick
# Kernels must draw with matplotlib's inline backend: a backend inherited from
# the caller's environment (MPLBACKEND=Agg on many CI images) would silently drop
# every figure from the notebooks.
unexport MPLBACKEND
# Keep TensorFlow's start-up chatter out of test logs.
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: help setup notebooks book test test-tools test-units test-nbval test-book test-learning book-notebooks \
        reference bench clean distclean

help:  ## List the targets
	@echo "frameworks (d2l_shim.TABLE, one tab, environment and kernel each): $(FRAMEWORKS)"
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | \
	  awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

# --- environments ----------------------------------------------------------
# A stamp per environment: rebuilt only when its requirement files change, so a
# second `make setup` does nothing.

$(ENVS)/tools/.stamp: requirements/tools.txt
	@echo "== environment tools"
	@test -x $(TOOLS_PY) || $(PYTHON) -m venv $(ENVS)/tools
	@$(TOOLS_PY) -m pip install $(PIP_QUIET) -r requirements/tools.txt \
	  > $(ENVS)/tools/pip.log 2>&1 || { tail -n 30 $(ENVS)/tools/pip.log; exit 1; }
	@touch $@

$(ENVS)/%/.stamp: requirements/%.txt requirements/common.txt pyproject.toml $(ENVS)/tools/.stamp
	@echo "== environment $*"
	@test -x $(ENVS)/$*/bin/python || $(PYTHON) -m venv $(ENVS)/$*
	@$(ENVS)/$*/bin/python -m pip install $(PIP_QUIET) -r requirements/$*.txt \
	  > $(ENVS)/$*/pip.log 2>&1 || { tail -n 30 $(ENVS)/$*/pip.log; exit 1; }
	@$(ENVS)/$*/bin/python -m pip install $(PIP_QUIET) --no-deps --no-build-isolation -e . \
	  >> $(ENVS)/$*/pip.log 2>&1 || { tail -n 30 $(ENVS)/$*/pip.log; exit 1; }
	@$(ENVS)/$*/bin/python -m ipykernel install --prefix $(abspath $(ENVS)/tools) \
	  --name $* --display-name "Python 3 ($*)" > /dev/null 2>&1
	@$(ENVS)/$*/bin/python -c "import d2l_shim; d2l_shim.load('$*'); print('   $* imports')" \
	  2>&1 | grep -v -E '^(WARNING|I0000|E0000)' || true
	@touch $@

ENV_STAMPS := $(ENVS)/tools/.stamp $(foreach fw,$(FRAMEWORKS),$(ENVS)/$(fw)/.stamp)

# The book's tooling (Sphinx, MyST-NB, Playwright; requirements/book.txt) goes
# into envs/tools too, under its own stamp, so changing it re-executes no notebook.
BOOK_STAMP := $(ENVS)/tools/.book-stamp

$(BOOK_STAMP): requirements/book.txt requirements/tools.txt $(ENVS)/tools/.stamp
	@echo "== book tooling in envs/tools"
	@$(TOOLS_PY) -m pip install $(PIP_QUIET) -r requirements/tools.txt -r requirements/book.txt \
	  > $(ENVS)/tools/pip-book.log 2>&1 || { tail -n 30 $(ENVS)/tools/pip-book.log; exit 1; }
	@touch $@

setup: $(ENV_STAMPS) $(BOOK_STAMP)  ## Create one environment and kernel per framework, plus tools (idempotent)
	@echo "environments ready: $(FRAMEWORKS) + tools"

# --- notebooks ---------------------------------------------------------------

SPLIT := $(BUILD)/split
EXECUTED := $(BUILD)/notebooks

# The split notebooks carry the stored outputs of the cells tagged
# nbval-check-output (tests/reference/), which nbval compares with a fresh run.
$(SPLIT)/.stamp: $(CHAPTERS) tools/nbsplit.py tools/reference.py $(wildcard tests/reference/*/*.json) $(ENVS)/tools/.stamp
	@$(TOOLS_PY) -m tools.nbsplit $(CHAPTERS) --out $(SPLIT) --reference tests/reference
	@touch $@

# One executed notebook per framework and chapter, e.g. build/notebooks/pytorch/dcgan.ipynb.
EXECUTED_NOTEBOOKS := $(foreach fw,$(FRAMEWORKS),$(foreach ch,$(CHAPTER_NAMES),$(EXECUTED)/$(fw)/$(ch).ipynb))

# nbsplit rewrites only the split notebooks whose chapter changed, so an executed
# notebook depends on its own split file, not on the stamp: editing one chapter
# re-executes that chapter only. (Listed explicitly so make keeps them.)
SPLIT_NOTEBOOKS := $(patsubst $(EXECUTED)/%,$(SPLIT)/%,$(EXECUTED_NOTEBOOKS))
$(SPLIT_NOTEBOOKS): $(SPLIT)/%.ipynb: $(SPLIT)/.stamp
	@true

$(EXECUTED)/%.ipynb: $(SPLIT)/%.ipynb $(ENV_STAMPS) d2l_shim/*.py tools/execute.py
	@$(TOOLS_PY) -m tools.execute $(SPLIT)/$*.ipynb --out $@

notebooks: $(EXECUTED_NOTEBOOKS)  ## Execute every chapter in every framework (quick profile) -> build/notebooks/<fw>/<chapter>.ipynb

# The book shows runs long enough to learn: the same split notebooks, executed
# in the book profile (BOOK_PROFILE=full on a GPU box), one training run per
# framework; the learning check reads these very notebooks.
BOOK_PROFILE ?= book
BOOK_EXECUTED := $(BUILD)/book-notebooks/$(BOOK_PROFILE)
BOOK_NOTEBOOKS := $(patsubst $(EXECUTED)/%,$(BOOK_EXECUTED)/%,$(EXECUTED_NOTEBOOKS))

$(BOOK_EXECUTED)/%.ipynb: $(SPLIT)/%.ipynb $(ENV_STAMPS) d2l_shim/*.py tools/execute.py
	@D2L_PROFILE=$(BOOK_PROFILE) $(TOOLS_PY) -m tools.execute $(SPLIT)/$*.ipynb --out $@

book-notebooks: $(BOOK_NOTEBOOKS)  ## Execute every chapter in the book profile -> build/book-notebooks/<profile>/<fw>/<chapter>.ipynb

# --- the HTML book -------------------------------------------------------------
# tools/build_book merges each chapter's executed notebooks into one page with
# framework tabs under build/book/ (rewriting only pages whose notebooks changed);
# Sphinx renders them with book/ as its configuration folder, re-reading only
# changed pages. Nothing is executed here: the notebooks above are the outputs.

BOOK_SRC := $(BUILD)/book
BOOK_OUT := book/_build

book: $(BOOK_NOTEBOOKS) $(BOOK_STAMP)  ## The HTML book (BOOK_PROFILE=book, CPU-sized) -> book/_build/html/index.html
	@$(TOOLS_PY) -m tools.build_book $(CHAPTERS) --notebooks $(BOOK_EXECUTED) \
	  --order book/chapters.txt --front book/index.md --out $(BOOK_SRC)
	@# A failed build has saved its cache all the same, and the next run would not
	@# re-read (nor warn about) those pages again: drop the cache on failure.
	@$(TOOLS_PY) -m sphinx -b html -W --keep-going -q -c book -d $(BOOK_OUT)/doctrees \
	  $(BOOK_SRC) $(BOOK_OUT)/html || { rm -rf $(BOOK_OUT)/doctrees; exit 1; }
	@echo "book: $(BOOK_OUT)/html/index.html"

# The browser test drives an installed Chromium or Chrome (Playwright's own
# download fails offline): CHROMIUM=/path/to/chrome, else the first one on PATH;
# with none, root gets Debian's chromium from apt-get, anyone else a message.
CHROMIUM ?= $(firstword $(foreach name,chromium chromium-browser google-chrome google-chrome-stable,$(shell command -v $(name) 2>/dev/null)))
BROWSER_FILE := $(BUILD)/browser-path

$(BROWSER_FILE): FORCE
	@mkdir -p $(BUILD)
	@browser="$(CHROMIUM)"; \
	if [ -z "$$browser" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get > /dev/null; then \
	    echo "== chromium (Debian) for the browser test"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null; \
	    browser=$$(command -v chromium); \
	  else \
	    echo "make test-book needs Chromium or Chrome: install one (Debian: sudo apt-get install chromium)" \
	         "or name it with CHROMIUM=/path/to/chrome" >&2; exit 1; \
	  fi; \
	fi; \
	printf '%s\n' "$$browser" > $@

.PHONY: FORCE
FORCE:

reference: notebooks  ## Refresh the stored outputs of cells tagged nbval-check-output (check the diff!)
	@for nb in $(EXECUTED_NOTEBOOKS); do \
	  $(TOOLS_PY) -m tools.reference update $$nb --out tests/reference; done
	@git diff --stat -- tests/reference || true

# --- tests ---------------------------------------------------------------------

RESULTS := $(BUILD)/test-results

test-tools: setup $(SPLIT)/.stamp  ## ruff, and the unit tests of the build tools (tools env)
	@mkdir -p $(RESULTS)
	@$(ENVS)/tools/bin/ruff check --quiet . && echo "ruff: no findings"
	@$(TOOLS_PY) -m pytest tests --framework none -q --junitxml=$(RESULTS)/tools.xml

test-units: setup $(SPLIT)/.stamp  ## Unit tests of the shim and the chapter's models, in each framework env
	@mkdir -p $(RESULTS)
	@for fw in $(FRAMEWORKS); do echo "== unit tests: $$fw"; \
	  $(ENVS)/$$fw/bin/python -m pytest tests --framework $$fw -q \
	    --junitxml=$(RESULTS)/units-$$fw.xml || exit 1; done

# nbval runs every cell of every tab in the chapter's quick profile, each
# notebook in its framework's kernel, and compares the tagged cells' outputs.
NBVAL := $(TOOLS_PY) -m pytest --nbval-lax -p no:cacheprovider -q
test-nbval: $(SPLIT)/.stamp $(ENV_STAMPS)  ## nbval over every tab of every chapter (quick profile)
	@mkdir -p $(RESULTS)
	@D2L_PROFILE=quick $(NBVAL) $(SPLIT) --junitxml=$(RESULTS)/nbval.xml

# The book's own notebooks: every cell ran, and the DCGAN in every tab learned.
test-learning: $(BOOK_NOTEBOOKS)  ## The book's runs: SWD to held-out images >= 30% below untrained, per framework
	@mkdir -p $(RESULTS)
	@$(TOOLS_PY) -m pytest tests/test_book_notebooks.py -q -s -p no:cacheprovider \
	  --notebooks $(BOOK_EXECUTED) --junitxml=$(RESULTS)/learning.xml

test-book: book $(BROWSER_FILE)  ## The built book in headless Chromium: tabs, figures, math, downloads
	@mkdir -p $(RESULTS)
	@BOOK_BROWSER=$$(cat $(BROWSER_FILE)) $(TOOLS_PY) -m pytest tests/test_book_browser.py -q \
	  -p no:cacheprovider --notebooks $(BOOK_EXECUTED) --junitxml=$(RESULTS)/book.xml

test: setup  ## Everything: tool tests, unit tests per framework, nbval on every tab, the book, learning
	@rm -rf $(RESULTS)  # the summary reads every report there: none may be left from older runs
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory test-tools test-units test-nbval test-learning test-book; \
	$(TOOLS_PY) -m tools.test_summary $(RESULTS)/*.xml --seconds $$(( $$(date +%s) - start ))

bench: setup $(SPLIT)/.stamp  ## Training-step speed per framework vs the CPU's matmul peak -> build/bench/
	@$(ENVS)/pytorch/bin/python -m tools.bench --out $(BUILD)/bench $(BENCH_ARGS)

clean:  ## Remove build outputs (keeps the environments)
	rm -rf $(BUILD) $(BOOK_OUT)

distclean: clean  ## Remove build outputs and the environments
	rm -rf $(ENVS)
