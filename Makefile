# privcam: `make demo` and `make test` bootstrap .venv themselves.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch/torchvision pins for this platform (CPU boxes with the local wheels); override on GPU boxes,
# e.g. `make test TORCH_SPEC="torch==2.5.1 torchvision==0.20.1"`.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed
# glibc returns every large CPU tensor to the OS and page-faults it back in on the next
# allocation; keeping freed memory in the heap makes CPU FFTs 2-3x faster (bench_attacks.py).
export MALLOC_MMAP_THRESHOLD_ ?= 1073741824
export MALLOC_TRIM_THRESHOLD_ ?= 4294967296

.PHONY: venv demo study test lint bench bench-input gpu-check clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip >/dev/null
	$(PY) -m pip install $(TORCH_SPEC)
	$(PY) -m pip install -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) evaluate.py demo --out runs/demo

# The privacy study (docs/evaluation.md, "Privacy study"): five privacy lenses and the defocus and
# lowres references against fresh attackers, on the demo's ideal captioner when `make demo` has run
# (else it trains its own). About 3.5-4 h on a 2-core CPU (estimated from the stages' measured times:
# each camera 3-16 min of training, 25-40 min of attacks); a rerun resumes. `make study
# STUDY_EXTRA=--saturate` trains every learned attacker to saturation instead (evaluate.py attack
# --saturate): a GPU job, its wall time not measured yet (no GPU lent; one 1,200-pair U-Net level
# alone takes 20-35 min on a 2-core CPU, and each level doubles it; benchmarks/bench_attackers.py
# projects at most 567 h of attacker training there, and sizes it on a GPU box in a minute).
STUDY_ARGS ?= $(if $(wildcard runs/demo/ideal/checkpoints/best.ckpt),--init-from runs/demo/ideal/checkpoints/best.ckpt)
STUDY_EXTRA ?=
study: $(STAMP)
	$(PY) evaluate.py study --out runs/study $(STUDY_ARGS) $(STUDY_EXTRA)

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: $(STAMP)
	$(PY) benchmarks/bench_optics.py
	$(PY) benchmarks/bench_attacks.py

bench-input: $(STAMP)
	$(PY) benchmarks/bench_input.py

# One-shot GPU readiness check (one JSON line, exit 1 on a failed check). On a GPU box set a CUDA
# TORCH_SPEC (docs/training.md, "Setting up a GPU box"); on CPU: make gpu-check GPU_CHECK_ARGS="--device cpu --tiny".
GPU_CHECK_ARGS ?=
gpu-check: $(STAMP)
	$(PY) benchmarks/gpu_check.py --out runs/gpu_check.json $(GPU_CHECK_ARGS)

clean:
	rm -rf runs .pytest_cache
