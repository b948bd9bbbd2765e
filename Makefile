# `make run` trains the main job on real Fashion-MNIST; `make test` runs the test suite.
# Both create .venv and install dlrun into it first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
FASHION_DEB := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz

.PHONY: setup data run test lint clean

setup: $(VENV)/.installed

# pip byte-compiles the ~17,000 files of torch, mlflow and the rest one after the other
# (two minutes on 2 cores); compileall does it on every core, and leaves out the packages'
# own test suites (3,500 files nothing imports). It exits 1 for the odd file no Python 3.11
# parses (torch ships one for 3.12), which pip passes over as well.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --no-compile -e '.[dev,tracking,sweep,slurm]'
	-$(BIN)/python -m compileall -q -j 0 -x '/site-packages/.+/tests/' $(VENV)/lib > /dev/null
	touch $@

# Fashion-MNIST from Debian's package where apt-get exists; otherwise `make run` lets
# torchvision download it (dataset.download=true).
data:
	@if [ ! -f $(FASHION_DEB) ] && command -v apt-get >/dev/null; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq dataset-fashion-mnist; \
	fi

run: setup data
	$(BIN)/dlrun model=lenet optimizer=adam dataset.download=true

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) build dist *.egg-info
