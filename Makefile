# Two entry points (see README): `make demo` and `make test`. Both create ./.venv on first use with
# the tested set: requirements/lock.txt as pip constraints over setup.cfg's ranges.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements/lock.txt
# Installed without their declared dependencies (those would pull CUDA torch or the non-headless
# OpenCV); their versions come from the lock.
NO_DEPS := torchvision imagenet-c efficientnet-lite-pytorch robustbench torchattacks timm
# `make compat`: the oldest versions setup.cfg claims (requirements/oldest.txt) in their own venv,
# against a subset that covers corruptions, perturbations, metrics, models, attacks and the TF-free
# dataset path (the whole suite takes too long on 2 cores to run twice).
OLDEST_VENV ?= .venv-oldest
OLDEST := requirements/oldest.txt
COMPAT_TESTS := tests/test_preprocess.py tests/test_ops_jpeg.py tests/test_corruptions_noise.py \
  tests/test_corruptions_digital.py tests/test_perturbations.py tests/test_metrics_reference.py \
  tests/test_metrics_streaming.py tests/test_models_zoo.py tests/test_attacks.py \
  tests/test_run_tfds.py

.PHONY: demo test system-deps venv lock compat clean

$(STAMP): setup.cfg pyproject.toml $(LOCK)
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c $(LOCK) --upgrade setuptools wheel
	$(BIN)/pip install -q -c $(LOCK) -e ".[tfds,test]"
	$(BIN)/pip install -q -c $(LOCK) --no-deps $(NO_DEPS)
	touch $(STAMP)

venv: $(STAMP)

# ImageMagick's MagickWand (the oracle for motion blur and snow, through Wand).
system-deps:
	@if ! ldconfig -p | grep -q libMagickWand; then \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q libmagickwand-dev; fi

demo: $(STAMP)
	$(BIN)/python -m metrics.run --output_dir=demo_output

# pytest exits 5 when it collects no test: that fails here like any other failure.
test: system-deps $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile tests

# After a tested upgrade of .venv: rewrite the lock from what is installed (the project's closure only).
lock: $(STAMP)
	$(BIN)/python requirements/lock.py

compat: system-deps
	$(PY) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/pip install -q --upgrade pip
	$(OLDEST_VENV)/bin/pip install -q -c $(OLDEST) -e ".[test]"
	$(OLDEST_VENV)/bin/pip install -q -c $(LOCK) --no-deps $(NO_DEPS)
	$(OLDEST_VENV)/bin/python -c "import jax, jaxlib, flax, optax, numpy, scipy, skimage, cv2, PIL, \
	  tensorflow_datasets as t; print('jax', jax.__version__, 'jaxlib', jaxlib.__version__, 'flax', \
	  flax.__version__, 'optax', optax.__version__, 'numpy', numpy.__version__, 'scipy', \
	  scipy.__version__, 'scikit-image', skimage.__version__, 'opencv', cv2.__version__, 'pillow', \
	  PIL.__version__, 'tfds', t.__version__)"
	$(OLDEST_VENV)/bin/python -m pytest -q -n 2 --dist loadfile -p no:cacheprovider $(COMPAT_TESTS)

clean:
	rm -rf $(VENV) $(OLDEST_VENV) demo_output
