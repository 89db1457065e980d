# The two set-up commands are `make demo` and `make test` (README.md).
# Both install what is missing with apt on a Debian 12 machine (as root).
BUILD ?= build
JOBS ?= 2

.PHONY: deps build test unit demo bench clean install package

deps:
	@scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

# Unit tests, a short fuzz run per decoder, then integration tests on a real
# multi-node `roam cluster`. On failure the failed checks are printed again at
# the very end, where a CI log's tail shows them. -j2: unit tests and the fuzz
# runs share the two CPUs; every cluster and checkpoint test is RUN_SERIAL.
test: build
	@cd $(BUILD) && ctest -j2 --output-on-failure --timeout 900 || { \
	  echo "Failed checks (from Testing/Temporary/LastTest.log):"; \
	  grep -hE '^(FAIL |BAD |\[  FAILED  \])|^zdtm [^:]*: FAIL' \
	    Testing/Temporary/LastTest.log | cut -c1-400; exit 1; }

unit: build
	@cd $(BUILD) && ctest --output-on-failure -L unit

demo: build
	@BUILD=$(BUILD) scripts/demo.sh

bench: build
	@bench/run.sh

# Installs roam, roamd, the unit, /etc/roam/roamd.conf (kept if there),
# man pages and completion under $(DESTDIR) (docs/INSTALL.md).
install: build
	@DESTDIR=$(DESTDIR) cmake --install $(BUILD)

# The Debian package: $(BUILD)/roam_VERSION_ARCH.deb.
package: build
	@cd $(BUILD) && cpack -G DEB >cpack.log || { cat cpack.log; exit 1; }
	@ls $(BUILD)/roam_*.deb

clean:
	rm -rf $(BUILD) build-fuzz
