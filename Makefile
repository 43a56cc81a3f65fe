.PHONY: setup test-tools demo test bench compare clean dashboard-capture html-capture

# What tracing needs (bcc, headers, tracefs, the venv): enough for make demo.
setup:
	scripts/setup-host.sh
	scripts/setup-venv.sh

# The toolchains and programs the tests, examples and benchmarks use.
test-tools:
	scripts/setup-test-tools.sh

demo: setup
	$(MAKE) -C examples/demo
	cd examples/demo && ../../.venv/bin/fsaudit run --fail-on never --events demo-events.jsonl -- ./save_naive

test: setup test-tools
	.venv/bin/python -m pytest -q tests

clean:
	rm -rf .venv

bench: setup test-tools
	.venv/bin/python bench/run.py

# docs/dashboard.txt: the final screen of `make demo` with the live dashboard, in tmux.
dashboard-capture: setup test-tools
	$(MAKE) -C examples/demo
	scripts/capture-dashboard.sh > docs/dashboard.txt

# docs/html-report.png: the --html page of `make demo`'s program, in headless Chromium.
html-capture: setup
	$(MAKE) -C examples/demo
	scripts/capture-html-report.sh

# Every runtime's naive and durable save (examples/) traced, side by side.
compare: setup test-tools
	$(MAKE) -C examples
	examples/compare.sh .venv/bin/fsaudit
