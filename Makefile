# Thin wrapper: the real build is CMake. `make run` and `make test` work on a fresh Debian 12.
BUILD   ?= build
PREFIX  ?= /usr/local
JOBS    ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
ifeq ($(CI),true)
CMAKE_FLAGS += -DORCH_WERROR=ON
endif

# Debian packages: build, test and lint dependencies.
DEBIAN_PACKAGES = build-essential cmake pkg-config liblua5.4-dev lua5.4 libuv1-dev \
  libcurl4-openssl-dev lua-cjson lua-busted lua-check valgrind python3 openssl util-linux \
  procps lua-ldoc lua-markdown \
  scdoc man-db groff-base mandoc zsh debhelper lintian systemd tmux docker-compose nodejs \
  chromium
# orch image import (OCI layouts and archives) and the test images of subcontainers;
# bubblewrap runs subcontainers (the leader of each, see lua/orch/subcontainer/leader.lua)
DEBIAN_PACKAGES += umoci skopeo busybox-static bubblewrap

.PHONY: all deps build run test sanitize install deb bench soak fuzz lint layers docblocks docs \
  cppcheck tidy format clean

all: build

deps:
	@./tools/deps.sh $(DEBIAN_PACKAGES)
	@./tools/k8s-validate/install.sh

build: deps
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

run: build
	$(BUILD)/bin/orch run examples/quickstart/main.lua

# The soak runs (label soak: the 60 s chaos, the 1 GB flood) are left to `make soak`.
test: build
	cd $(BUILD) && ctest --output-on-failure --timeout 600 -LE soak

sanitize: deps
	@cmake -S . -B build-asan -DORCH_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug $(CMAKE_FLAGS) >/dev/null
	@cmake --build build-asan -j$(JOBS)
	cd build-asan && ctest --output-on-failure --timeout 900 -LE soak

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

# The Debian package, built out of the source tree (debian/, tools/deb.sh): $(BUILD)/deb/*.deb
deb: deps
	@./tools/deb.sh $(BUILD)/deb

bench: build
	./bench/run

FUZZ_SECONDS ?= 30
fuzz: deps
	@cmake -S . -B build-fuzz -DORCH_FUZZ=ON -DCMAKE_C_COMPILER=clang -DORCH_VALGRIND=OFF >/dev/null
	@cmake --build build-fuzz -j$(JOBS) --target fuzz_proc_net
	mkdir -p build-fuzz/corpus && cp -n spec/fuzz/corpus/proc_net/* build-fuzz/corpus/ 2>/dev/null || true
	build-fuzz/fuzz/fuzz_proc_net -max_total_time=$(FUZZ_SECONDS) -max_len=4096 build-fuzz/corpus spec/fuzz/corpus/proc_net

soak: build
	cd $(BUILD) && ctest --output-on-failure -L soak

# The layer check runs last, so an arrow that points up does not hide the other findings.
lint: docblocks cppcheck tidy
	clang-format --dry-run -Werror src/*.c src/*.h spec/c/*.c spec/c/*.h
	luacheck lua spec examples bench tools
	lua5.4 tools/layers.lua

# The one-way dependency rule of lua/orch (the layers are listed at the top of the script).
layers:
	lua5.4 tools/layers.lua

# Each doc comment sits on the function it documents (the rule is at the top of the script).
docblocks:
	lua5.4 tools/docblocks.lua

# The Lua API reference from the doc comments (config.ld), into $(BUILD)/docs. Any LDoc warning
# (a block it cannot place) fails it.
docs:
	@rm -rf $(BUILD)/docs && mkdir -p $(BUILD)
	@ldoc --dir $(BUILD)/docs . >$(BUILD)/ldoc.log 2>&1 || { cat $(BUILD)/ldoc.log; exit 1; }
	@if grep -q ':[0-9]*: ' $(BUILD)/ldoc.log; then cat $(BUILD)/ldoc.log; exit 1; fi
	@echo "docs: $(BUILD)/docs/index.html"

# Static analysis of src/: which checks, and why any are off, is in tools/cppcheck.supp and
# .clang-tidy. Both must be clean.
cppcheck:
	cppcheck --enable=warning,style,performance,portability --std=c11 --error-exitcode=1 \
	  --inline-suppr --suppressions-list=tools/cppcheck.supp -q -D_GNU_SOURCE -I src src/

LINT_BUILD ?= build-lint
tidy:
	@cmake -S . -B $(LINT_BUILD) -DCMAKE_EXPORT_COMPILE_COMMANDS=ON -DORCH_VALGRIND=OFF >/dev/null
	clang-tidy -p $(LINT_BUILD) --quiet src/*.c

format:
	clang-format -i src/*.c src/*.h spec/c/*.c spec/c/*.h

clean:
	rm -rf $(BUILD) build-asan build-fuzz $(LINT_BUILD)
