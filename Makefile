# lbie developer tasks. Everything runs inside .venv, created from requirements.txt.
#   make venv        create .venv and install requirements.txt (only when they changed)
#   make test        the import check, unit tests + every notebook at the smoke preset
#   make book        build the Jupyter Book (notebooks at their default preset)
#   make book-smoke  the same build at the smoke preset (quick check)
#   make clean       remove build products and caches (keeps .venv)

PYTHON ?= python3
VENV   := .venv
VPY    := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# No network access to the Hugging Face hub, in every recipe.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# Headless plots for the unit tests. Notebooks run with MPLBACKEND *unset*: ipykernel then
# picks the inline backend, whereas MPLBACKEND=Agg would silently drop every figure.
PLAIN_MPL := env -u MPLBACKEND

# --all: re-read every page, so the notebooks are executed again at the current preset
# (Sphinx would otherwise reuse pages executed by an earlier build, e.g. book-smoke).
BOOK_BUILD = $(VENV)/bin/jupyter-book build . --config book/_config.yml --toc book/_toc.yml \
	--path-output book -W --keep-going --all

# The notebook kernels read this IPython profile (IPYTHONDIR below), which logs only errors:
# ipykernel would otherwise warn once per notebook that its sockets (on localhost) are not
# encrypted. Output of the notebooks' own code, warnings included, is not affected.
KERNEL_DIR    := book/_build/ipython
KERNEL_CONFIG := $(KERNEL_DIR)/profile_default/ipython_kernel_config.py
BOOK_ENV      := IPYTHONDIR=$(CURDIR)/$(KERNEL_DIR)

.PHONY: venv test book book-smoke clean distclean

venv: $(STAMP)

# Reinstall only when requirements.txt or pyproject.toml change.
$(STAMP): requirements.txt pyproject.toml
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -r requirements.txt
	touch $@

# The import check first: no import cycle, no import of another module's private name, no import up the
# package's layers (it prints the module graph).
test: $(STAMP)
	MPLBACKEND=Agg $(VPY) -m lbie.devtools imports
	MPLBACKEND=Agg LBIE_PRESET=smoke $(VPY) -m pytest -q tests
	$(PLAIN_MPL) LBIE_PRESET=smoke $(VPY) -m pytest -q --nbmake --nbmake-timeout=600 notebooks/

# Both print how long the build took (the notebooks' execution included).
book: $(STAMP) $(KERNEL_CONFIG)
	@start=$$(date +%s); $(PLAIN_MPL) -u LBIE_PRESET $(BOOK_ENV) $(BOOK_BUILD) && \
	echo "Book built in $$(( $$(date +%s) - start )) s: file://$(CURDIR)/book/_build/html/index.html"

book-smoke: $(STAMP) $(KERNEL_CONFIG)
	@start=$$(date +%s); $(PLAIN_MPL) LBIE_PRESET=smoke $(BOOK_ENV) $(BOOK_BUILD) && \
	echo "Book built in $$(( $$(date +%s) - start )) s: file://$(CURDIR)/book/_build/html/index.html"

$(KERNEL_CONFIG):
	mkdir -p $(@D)
	echo 'c.IPKernelApp.log_level = "ERROR"' > $@

clean:
	rm -rf book/_build .pytest_cache .cache build
	find . -path ./$(VENV) -prune -o \( -name __pycache__ -o -name .ipynb_checkpoints \) -type d -print \
		| xargs rm -rf

distclean: clean
	rm -rf $(VENV) *.egg-info
