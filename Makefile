# The README's two commands: `make demo` (set up + run the demo) and `make test` (set up + run the tests).
SHELL := bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --disable-pip-version-check -c constraints.txt
CODE := lumbar tests bench

.PHONY: demo test lint install install-test bench mutation clean

$(BIN)/python:
	@echo "== creating the virtual environment $(VENV) ($(PYTHON))"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip

# Reinstall only when the dependencies change. The constraints file pins torch to the CPU build.
# Inference needs no torch: the demo installs the package alone; the tests add the train and test extras.
$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	@echo "== installing lumbar and what inference needs (onnxruntime, pydicom, nibabel, weasyprint, ...): first run only"
	$(PIP) -e . 2>&1 | { grep -Ev "^(WARNING: Location|Requirement already satisfied)" || true; }
	$(BIN)/python -m pip check --disable-pip-version-check
	@$(BIN)/python -c "import onnxruntime, pydicom, nibabel, SimpleITK, weasyprint, lumbar.api" && touch $@

$(VENV)/.installed-test: pyproject.toml constraints.txt $(VENV)/.installed
	@echo "== installing the train, test and cluster extras (torch CPU, MONAI, scikit-learn, pytest, ruff, import-linter, Ray): first run only"
	$(PIP) -e '.[train,test,cluster]' 2>&1 | { grep -Ev "^(WARNING: Location|Requirement already satisfied)" || true; }
	$(BIN)/python -m pip check --disable-pip-version-check
	@$(BIN)/python -c "import torch, monai, pytest, importlinter" && touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

demo: install
	$(BIN)/lumbar demo --out lumbar-demo

lint: install-test
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)
	$(BIN)/lint-imports

# Branch coverage: the package's total is printed; the maths and decision modules (those `make mutation` mutates,
# and the grade decisions) must stay above a floor.
CORE := lumbar/metrics.py,lumbar/tasks/measurements.py,lumbar/tasks/levels.py,lumbar/tasks/stenosis.py,lumbar/tasks/summary.py,lumbar/tasks/sacrum.py,lumbar/tasks/lateral.py,lumbar/tasks/ct_bone.py,lumbar/tasks/cobb.py,lumbar/tasks/grading.py
CORE_FLOOR := 95

test: lint
	$(BIN)/python -m pytest -q --cov --cov-report=
	@echo "== branch coverage of the maths and decision modules (floor $(CORE_FLOOR)%)"
	$(BIN)/python -m coverage report --include='$(CORE)' --fail-under=$(CORE_FLOOR)
	@echo "== branch coverage of the package: $$($(BIN)/python -m coverage report --format=total)%"
	@echo "== mutation score of a fixed sample of the mutants \`make mutation\` runs (floor $(SAMPLE_FLOOR)%)"
	$(BIN)/python tests/mutation_sample.py --per-module $(SAMPLE_PER_MODULE) --floor $(SAMPLE_FLOOR)

# Mutation testing of the same modules ([tool.mutmut] in pyproject.toml): a score per module, and a floor.
# `make test` runs a fixed sample of the mutants (minutes); `make mutation` runs them all (about 45 min).
MUTATION_FLOOR := 90
SAMPLE_PER_MODULE := 40
SAMPLE_FLOOR := 85

mutation: install-test
	rm -rf mutants
	$(BIN)/mutmut run > .mutmut.log 2>&1 || { tail -c 2000 .mutmut.log; exit 1; }
	$(BIN)/python tests/mutation_score.py --floor $(MUTATION_FLOOR)

bench: install-test
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) lumbar-demo .pytest_cache .coverage mutants .mutmut.log
