# Two entry points (see README): `make demo` and `make test`. Both create ./.venv on first use.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test system-deps venv clean

$(STAMP): setup.cfg pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	$(BIN)/pip install -q -e ".[tfds,test]"
	$(BIN)/pip install -q --no-deps torchvision==0.28.0 imagenet-c==0.0.3 efficientnet-lite-pytorch==0.1.0
	touch $(STAMP)

venv: $(STAMP)

# ImageMagick's MagickWand (the oracle for motion blur and snow, through Wand).
system-deps:
	@if ! ldconfig -p | grep -q libMagickWand; then \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q libmagickwand-dev; fi

demo: $(STAMP)
	$(BIN)/python -m metrics.run --output_dir=demo_output

test: system-deps $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile tests

clean:
	rm -rf $(VENV) demo_output
