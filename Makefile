# Two commands on a fresh machine: `make demo` and `make test`.
# Everything they need is installed here into .venv; nothing by hand.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.pano360-installed
EXAMPLE := examples/panorama.jpg
PANO := $(BIN)/pano360

.PHONY: demo test lint format venv clean bench example docs-figures

KERNEL := $(VENV)/.pano360-kernel

venv: $(KERNEL)

# Re-installs only when the package metadata or the pins change.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || (echo "creating the virtual environment .venv..." && $(PYTHON) -m venv $(VENV))
	@echo "installing pano360 and its dependencies into .venv (about a minute the first time)..."
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

# SphereConv2d's compiled CPU kernel, built ahead of use (about 50 s, once per source, torch and
# python version; it lives outside the checkout, see docs/layers.md). It says whether it built
# or found the kernel. Without a compiler pano360 still works (pure-torch path, slower), so a
# failed build does not stop the install; `make test` then fails in tests/nn.
$(KERNEL): $(STAMP) $(wildcard src/pano360/nn/csrc/*)
	@$(BIN)/python -m pano360.nn.build || echo "continuing without the compiled kernel"
	@touch $(KERNEL)

# The main job on the embedded example: find, outline and blur the faces (all eight, including
# those near the poles and across the seam), then a cube map, perspective views and a rotated copy.
# Last, an interactive 360-degree report of the example (its faces and saliency on the sphere).
DEMO_OUT := out/panorama_faces.jpg out/cube_dice.jpg out/view_front.jpg out/view_right.jpg \
	out/view_up.jpg out/view_seam.jpg out/rotated.jpg out/report/index.html
REPORT_ARGS := $(EXAMPLE) --faces out/panorama_faces.json --saliency out/panorama_saliency.npy \
	--out out/report

demo: $(DEMO_OUT)
	@echo "demo outputs in $(CURDIR)/out:" && ls -1 out
	@echo "the 360-degree report: open file://$(CURDIR)/out/report/index.html in a browser,"
	@echo "or serve it: $(PANO) report $(REPORT_ARGS) --overwrite --serve"

out/panorama_faces.jpg: $(EXAMPLE) $(KERNEL)
	@mkdir -p out
	$(PANO) faces $< --blur --out out --overwrite

out/panorama_saliency.npy: $(EXAMPLE) $(KERNEL)
	@mkdir -p out
	$(PANO) saliency $< --out out --overwrite

out/report/index.html: $(EXAMPLE) out/panorama_faces.jpg out/panorama_saliency.npy $(KERNEL)
	$(PANO) report $(REPORT_ARGS) --overwrite

out/cube_dice.jpg: $(EXAMPLE) $(KERNEL)
	@mkdir -p out
	$(PANO) project e2c $< $@ --face-w 512 --layout dice --overwrite
out/view_front.jpg: $(EXAMPLE) $(KERNEL)
	@mkdir -p out
	$(PANO) project e2p $< $@ --fov 90 --size 800x600 --overwrite
out/view_right.jpg: $(EXAMPLE) $(KERNEL)
	@mkdir -p out
	$(PANO) project e2p $< $@ --fov 75 --yaw 90 --pitch 20 --size 800x600 --overwrite
out/view_up.jpg: $(EXAMPLE) $(KERNEL)
	@mkdir -p out
	$(PANO) project e2p $< $@ --fov 100 --pitch 70 --size 800x600 --overwrite
out/view_seam.jpg: $(EXAMPLE) $(KERNEL)
	@mkdir -p out
	$(PANO) project e2p $< $@ --fov 90 --yaw 180 --roll 15 --size 800x600 --overwrite
out/rotated.jpg: $(EXAMPLE) $(KERNEL)
	@mkdir -p out
	$(PANO) project rotate $< $@ --yaw 90 --pitch 30 --overwrite

test: $(KERNEL)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	PANO360_REQUIRE_EXTENSIONS=1 $(BIN)/python -m pytest -q -p no:cacheprovider -n auto --dist worksteal \
		--doctest-modules src tests

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(KERNEL)
	$(BIN)/python benchmarks/bench_geometry.py
	$(BIN)/python benchmarks/bench_sphere_conv.py

# Regenerating committed assets needs the optional `assets` extra (scikit-image, matplotlib).
example: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,assets]"
	$(BIN)/python examples/make_panorama.py

docs-figures: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,assets]"
	$(BIN)/python docs/figures/make_figures.py

clean:
	rm -rf out .pytest_cache .ruff_cache
