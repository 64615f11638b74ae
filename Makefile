# Two commands for a newcomer: `make run` and `make test`. Both install what is
# missing (deploy/install-deps.sh, idempotent) and build in Release first.
BUILD_DIR ?= build
JOBS ?= 2
ADDRESS ?= 127.0.0.1:50051
# ccache keys on relative paths under the checkout, so a fresh clone (CI)
# reuses the objects an earlier build of the same sources left.
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1

.PHONY: deps configure build run test deb bench fuzz sanitize clean

deps:
	bash deploy/install-deps.sh

configure: deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release

build: configure
	cmake --build $(BUILD_DIR) -j$(JOBS)

run: build
	bash deploy/run-demo.sh $(BUILD_DIR) $(ADDRESS)

test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j$(JOBS)

# Debian packages in $(BUILD_DIR)/packages: embedserve (server, embedctl,
# systemd unit) and libembedserve-client-dev (README, Install).
deb: build
	cpack --config $(BUILD_DIR)/CPackConfig.cmake

bench: build
	bash deploy/install-deps.sh --bench
	bash bench/run_e2e_bench.sh $(BUILD_DIR)
	bash bench/run_kernel_bench.sh $(BUILD_DIR)
	bash bench/run_train_bench.sh $(BUILD_DIR)
	bash bench/run_snapshot_bench.sh $(BUILD_DIR)
	bash bench/run_storage_bench.sh $(BUILD_DIR)
	bash bench/run_metrics_bench.sh $(BUILD_DIR)

# libFuzzer + ASan/UBSan (clang) in their own build dir; each target runs
# FUZZ_SECONDS over a scratch copy of its corpus (README "Fuzzing").
FUZZ_SECONDS ?= 60
FUZZ_BUILD_DIR ?= build-fuzz
FUZZ_TARGETS ?= pretrained_fuzz meta_codec_fuzz table_spec_fuzz request_fuzz update_log_fuzz dynamic_request_fuzz dynamic_durable_fuzz

fuzz:
	bash deploy/install-deps.sh --fuzz
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DEMBEDSERVE_FUZZ=ON
	cmake --build $(FUZZ_BUILD_DIR) -j$(JOBS) --target $(FUZZ_TARGETS)
	bash fuzz/run_fuzzers.sh $(FUZZ_BUILD_DIR) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# Every test (ctest, Python and torch tests included) against a build with
# AddressSanitizer and UndefinedBehaviorSanitizer (g++), in its own build
# dir; any finding aborts the test that hit it (README "Sanitizers").
SAN_BUILD_DIR ?= build-asan
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
# Not under sanitizers: the RSS checks of the fault tests (ASan's quarantine
# keeps freed memory resident: they would measure ASan) and install_test
# (it links the installed client into a program built without them).
SAN_SKIP := ^(fault_message_size|fault_rapid_reset|install_test)$$

sanitize: deps
	cmake -S . -B $(SAN_BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_CXX_FLAGS="$(SAN_FLAGS)" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
	  -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined"
	cmake --build $(SAN_BUILD_DIR) -j$(JOBS)
	ASAN_OPTIONS=allocator_may_return_null=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/sanitizers/lsan.supp \
	  UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir $(SAN_BUILD_DIR) --output-on-failure -j$(JOBS) -E '$(SAN_SKIP)'

clean:
	rm -rf $(BUILD_DIR)
