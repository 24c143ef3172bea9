# The two commands of the README. Both install what a fresh Debian 12 machine lacks, then build.
#   make demo  - build and run the embedded demo (synthetic DAS record -> cube -> info)
#   make view  - serve the demo's cube to the browser (after make demo; PORT=8765 by default)
#   make test  - formatting, lints and every test (real data from ../shared, Python readers,
#                a real S3 server: Garage, built once into ~/.cache/cryocube-tools)

SHELL := /bin/bash
APT_PACKAGES := build-essential libhdf5-dev libnetcdf-dev libgdal-dev pkg-config python3-venv gdal-bin
# Only the tests need these: the viewer's page is tested in a real headless Chromium (its
# WebM exports read back by ffprobe/ffmpeg), and `cryocube slurm` against a one-node Slurm
# cluster the tests start.
TEST_APT_PACKAGES := chromium chromium-driver slurmctld slurmd slurm-client munge ffmpeg
# Evaluated when used, i.e. after `deps` may have installed Rust under ~/.cargo.
CARGO ?= $(shell command -v cargo || echo $(HOME)/.cargo/bin/cargo)

.PHONY: deps test-deps demo view test bench

deps:
	@bash scripts/install-deps.sh $(APT_PACKAGES)

test-deps: deps
	@bash scripts/install-deps.sh $(TEST_APT_PACKAGES)
	@CARGO=$(CARGO) bash scripts/install-garage.sh
	@CARGO=$(CARGO) bash scripts/install-cargo-deny.sh

demo: deps
	$(CARGO) build --release --locked
	./target/release/cryocube demo -o cryocube-demo --overwrite

view:
	@test -d cryocube-demo/demo.zarr || { echo "no demo cube yet: run 'make demo' first" >&2; exit 1; }
	./target/release/cryocube view cryocube-demo/demo.zarr --port $(or $(PORT),8765)

CARGO_DENY := $(or $(CRYOCUBE_TOOLS),$(HOME)/.cache/cryocube-tools)/cargo-deny/bin/cargo-deny

test: test-deps
	$(CARGO) fmt --all -- --check
	$(CARGO_DENY) check --hide-inclusion-graph licenses bans sources
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	@for f in das geo view s3; do echo "cargo check -p cryocube --no-default-features --features $$f"; \
	  $(CARGO) check -q -p cryocube --no-default-features --features $$f --locked || exit 1; done
	$(CARGO) test --workspace --locked

bench: deps
	bash bench/das.sh
	bash bench/follow.sh
	bash bench/polar.sh
	bash bench/view.sh
	bash bench/scale.sh
	bash bench/scale_pairs.sh
	bash bench/python.sh
