# The two commands of the README: `make run` and `make test`. Both set up what is missing first.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: run test setup system-deps system-deps-test venv samples lab points clean fuzz mutants

run: system-deps venv
	$(VENV)/bin/flowviz calls sample_pcaps/lab/reference_call.pcap sample_pcaps/lab/busy_486.pcap sample_pcaps/lab/cancel.pcap
	@echo "Web UI on http://127.0.0.1:8050 (the bundled samples are one click away; Ctrl-C stops it)"
	$(VENV)/bin/flowviz serve --host 127.0.0.1 --port 8050

test: system-deps-test venv
	@scripts/install-test-tools.sh
	@# both cores, one test file per worker; what fails there runs again alone (docs/testing.md, "Parallel run")
	$(VENV)/bin/python -m pytest -q -ra -n 2 --dist loadfile || $(VENV)/bin/python -m pytest -q -ra --lf

setup: system-deps venv

system-deps:
	@scripts/install-system-deps.sh run

system-deps-test:
	@scripts/install-system-deps.sh test

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e '.[test]'
	@echo "Compiling flowviz's packet and RTP kernels (numba, once per checkout: about 30 s)"
	@$(VENV)/bin/flowviz --no-cache streams sample_pcaps/lab/reference_call.pcap > /dev/null \
		|| echo "(not compiled now; the first flowviz command will do it)"
	@touch $(STAMP)

# Regenerate the bundled captures: synthetic ones (no root needed) and the kamailio+sipp lab (root).
samples: venv
	$(VENV)/bin/python -m tests.synth.build sample_pcaps/synth

lab:
	bash lab/make_lab_captures.sh
	bash lab/make_capture_points.sh

# The reference call as seen at several capture points (docs/capture-sets.md), cut from the lab capture.
points:
	bash lab/make_capture_points.sh

# Fuzzing (docs/robustness.md "Fuzzing"): 30 minutes of mutants of the bundled and corpus captures through
# the CLI; failing mutants in benchmarks/out/fuzz/. Other budgets: make fuzz FUZZ_ARGS="--minutes 5 --seed 2"
fuzz: venv
	$(VENV)/bin/python benchmarks/fuzz.py --minutes 30 --seed 1 --jobs 1 --out benchmarks/out/fuzz --markdown benchmarks/out/fuzz/summary.md $(FUZZ_ARGS)

# Mutation check (docs/testing.md): deliberate bugs in a copy, each must fail its tests (on a schedule, not in CI).
mutants: venv
	$(VENV)/bin/python benchmarks/mutants.py $(MUTANTS_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
