.PHONY: setup demo test bench clean

setup:
	scripts/setup-host.sh
	scripts/setup-venv.sh

demo: setup
	$(MAKE) -C examples/demo
	cd examples/demo && ../../.venv/bin/fsaudit run --fail-on never --events demo-events.jsonl -- ./save_naive

test: setup
	.venv/bin/python -m pytest -q tests

clean:
	rm -rf .venv

bench: setup
	.venv/bin/python bench/run.py
