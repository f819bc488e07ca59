# SPDX-License-Identifier: MIT
# asyncprobe: `make` builds ./asyncprobe, `make test` runs every test,
# `make demo` shows it on a misbehaving service.  Output goes to .output/.
# vmlinux.h is generated from the build machine's kernel BTF
# (/sys/kernel/btf/vmlinux) with bpftool; CO-RE relocations make the one
# binary run on other kernels.

OUTPUT ?= .output
CLANG ?= clang
BPFTOOL ?= bpftool
CC ?= cc
ARCH := x86
V ?= 0
SANITIZE ?= 0

ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

PKGS := clang llvm bpftool libbpf-dev libelf-dev zlib1g-dev libjansson-dev \
	libcmocka-dev libmicrohttpd-dev pkg-config linux-libc-dev make gcc python3 \
	python3-aiohttp python3-uvloop debootstrap util-linux prometheus \
	protobuf-c-compiler libprotobuf-c-dev golang-go chromium wrk linux-perf \
	libpython3.11-testsuite libclang-rt-14-dev \
	qemu-system-x86 busybox-static cpio kmod xz-utils zstd

CFLAGS ?= -g -O2
CFLAGS += -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers \
	-std=gnu11 -D_GNU_SOURCE
# SANITIZE=1: AddressSanitizer and UBSan, built apart in .output-asan, the
# binary there too; `make test SANITIZE=1` runs every test with it.
ifeq ($(SANITIZE),1)
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
OUTPUT := .output-asan
BIN := $(OUTPUT)/asyncprobe
export ASYNCPROBE_SANITIZED := 1
else
BIN := asyncprobe
endif
# the tests and benchmarks run this binary
export ASYNCPROBE := $(abspath $(BIN))
INCLUDES := -I$(OUTPUT) -Ibpf -Iuser -Isymbolizer
LIBS := -lbpf -lelf -lz -ljansson -lmicrohttpd -lprotobuf-c -lm

# clang's own system include dirs for the BPF target (asm/types.h on Debian)
CLANG_BPF_SYS_INCLUDES = $(shell $(CLANG) -v -E - </dev/null 2>&1 \
	| sed -n '/<...> search starts here:/,/End of search list./{ s| \(/.*\)|-idirafter \1|p }')

SYMBOLIZER_SRCS := $(wildcard symbolizer/*.c)
USER_SRCS := $(filter-out user/main.c,$(wildcard user/*.c))
LIB_OBJS := $(patsubst %.c,$(OUTPUT)/%.o,$(SYMBOLIZER_SRCS) $(USER_SRCS)) \
	$(OUTPUT)/syscall_names.o $(OUTPUT)/profile.pb-c.o $(OUTPUT)/flamegraph_html.o
UNIT_TESTS := $(patsubst tests/unit/%.c,$(OUTPUT)/tests/%,$(wildcard tests/unit/test_*.c))

.PHONY: all deps clean test unit-test integration-test exporter-test demo bench \
	bench-smoke reliability-test soak vmtest dashboards format check-format

all: deps $(BIN)

# Installs the Debian packages the build and the tests need; does nothing
# when they are present.
deps:
	$(Q)missing=$$(for p in $(PKGS); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "  DEPS     installing:" $$missing; \
		if [ "$$(id -u)" != 0 ]; then echo "make deps: need root to install $$missing" >&2; exit 1; fi; \
		(apt-get update -qq || true) >/dev/null; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null \
		  || { echo "make deps: apt-get install $$missing failed" >&2; exit 1; }; \
	fi

# every build step runs after deps (order-only), under make -j too
$(OUTPUT) $(OUTPUT)/bpf $(OUTPUT)/user $(OUTPUT)/symbolizer $(OUTPUT)/tests: | deps
	$(Q)mkdir -p $@

$(OUTPUT)/vmlinux.h: | $(OUTPUT)
	$(call msg,GEN,$@)
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

$(OUTPUT)/%.bpf.o: bpf/%.bpf.c bpf/%.h $(OUTPUT)/vmlinux.h | $(OUTPUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) \
		-I$(OUTPUT) -Ibpf \
		$(CLANG_BPF_SYS_INCLUDES) -c $< -o $@.tmp
	$(Q)$(BPFTOOL) gen object $@ $@.tmp && rm -f $@.tmp

$(OUTPUT)/%.skel.h: $(OUTPUT)/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< > $@.tmp && mv $@.tmp $@

# syscall number -> name, generated from the kernel UAPI header
$(OUTPUT)/syscall_names.c: /usr/include/x86_64-linux-gnu/asm/unistd_64.h | $(OUTPUT)
	$(call msg,GEN,$@)
	$(Q){ echo '/* generated from $< */'; echo '#include "syscalls.h"'; \
	  echo 'const char *const syscall_names[] = {'; \
	  sed -n 's/^#define __NR_\([a-z0-9_]*\) \([0-9]*\)$$/\t[\2] = "\1",/p' $<; \
	  echo '};'; \
	  echo 'const unsigned int syscall_names_len = sizeof(syscall_names) / sizeof(syscall_names[0]);'; \
	} > $@

$(OUTPUT)/syscall_names.o: $(OUTPUT)/syscall_names.c user/syscalls.h
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(INCLUDES) -c $< -o $@

# pprof's profile.proto, for `asyncprobe report --format pprof`
$(OUTPUT)/profile.pb-c.c $(OUTPUT)/profile.pb-c.h: user/profile.proto | $(OUTPUT)
	$(call msg,PROTOC,$@)
	$(Q)protoc-c --c_out=$(OUTPUT) -Iuser $<

# the HTML flame graph's page, built in as ap_flamegraph_html (NUL-ended)
$(OUTPUT)/flamegraph_html.o: user/flamegraph.html | $(OUTPUT)
	$(call msg,EMBED,$@)
	$(Q)printf '\t.section .rodata\n\t.global ap_flamegraph_html\n\t.type ap_flamegraph_html, @object\nap_flamegraph_html:\n\t.incbin "%s"\n\t.byte 0\n\t.section .note.GNU-stack,"",@progbits\n' \
		$(abspath $<) | $(CC) -c -x assembler - -o $@

$(OUTPUT)/profile.pb-c.o: $(OUTPUT)/profile.pb-c.c $(OUTPUT)/profile.pb-c.h
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -Wno-unused-parameter $(INCLUDES) -c $< -o $@

$(OUTPUT)/user/%.o: user/%.c $(wildcard user/*.h symbolizer/*.h) bpf/asyncprobe.h $(OUTPUT)/asyncprobe.skel.h $(OUTPUT)/profile.pb-c.h | $(OUTPUT)/user
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(INCLUDES) -c $< -o $@

$(OUTPUT)/symbolizer/%.o: symbolizer/%.c $(wildcard symbolizer/*.h) | $(OUTPUT)/symbolizer
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(INCLUDES) -c $< -o $@

$(BIN): $(OUTPUT)/user/main.o $(LIB_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDFLAGS) $(LIBS) -o $@

$(OUTPUT)/tests/%: tests/unit/%.c $(LIB_OBJS) $(wildcard tests/unit/fixtures/*.h) | $(OUTPUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(INCLUDES) $< $(LIB_OBJS) $(LDFLAGS) $(LIBS) -lcmocka -o $@

unit-test: deps $(UNIT_TESTS)
	$(Q)tests/run-unit.sh $(UNIT_TESTS)

integration-test: deps $(BIN)
	$(Q)/usr/bin/python3 tests/integration/run.py $(if $(TESTS),-k $(TESTS))

# The exporter against a real Prometheus; the dashboard and the rules.
exporter-test: deps $(BIN)
	$(Q)/usr/bin/python3 tests/integration/exporter.py

# Reliability: bad input, targets that exec/fork/exit, SIGKILL, the target
# unharmed (byte-identical output, CPython's test_asyncio), a short soak.
# `make soak` runs the soak for SOAK_SECONDS (default 600).
SOAK_SECONDS ?= 600
reliability-test: deps $(BIN)
	$(Q)/usr/bin/python3 tests/integration/reliability.py $(if $(TESTS),-k $(TESTS))

soak: deps $(BIN)
	$(Q)/usr/bin/python3 tests/integration/reliability.py -k t_soak --soak $(SOAK_SECONDS)

# dashboards/asyncprobe.json is generated: edit dashboard.py, then this.
dashboards: dashboards/asyncprobe.json
dashboards/asyncprobe.json: dashboards/dashboard.py
	$(call msg,GEN,$@)
	$(Q)python3 $< > $@.tmp && mv $@.tmp $@

# Everything; the last line is "N passed, N failed, N skipped".
# TESTS=substring narrows the integration tests.
test: deps $(BIN) $(UNIT_TESTS)
	$(Q)TESTS="$(TESTS)" tests/run-all.sh $(UNIT_TESTS)

# Debian's 6.1, 6.12 and sid kernels booted under QEMU, the BPF tests run
# inside each (vmtests/); kernels are fetched with apt into a cache
# (/var/cache/asyncprobe/vm).  VM_KERNELS=6.1,sid narrows the run.
VM_KERNELS ?= 6.1,6.12,sid
vmtest: deps $(BIN)
	$(Q)/usr/bin/python3 vmtests/vmtest.py --kernels $(VM_KERNELS) \
		--bin $(BIN)

demo: deps $(BIN)
	$(Q)tests/demo.sh

# What watching costs, as ratios against unwatched runs in the same run:
# an aiohttp service under wrk against no profiler, asyncio debug mode and
# Austin (BENCHMARKS.md); then per syscall and loop iteration, task
# throughput, and how exactly stalls of a busy loop are timed.  BENCH_ARGS
# passes options to the service benchmark
# (--rounds, --seconds, --pairs, --variants, --configs, --markdown FILE;
# --pool: judge on the twin pairs of every run of this build so far).
# bench-smoke: one short round of each, for CI.
bench: deps $(BIN)
	$(Q)tests/bench/overhead.py $(BENCH_ARGS)
	$(Q)tests/bench/syscall_cost.sh
	$(Q)tests/bench/task_cost.sh
	$(Q)tests/bench/clock_precision.py

bench-smoke: deps $(BIN)
	$(Q)tests/bench/overhead.py --rounds 1 --seconds 1 --pairs 1 --solo 1 --tracing 1 \
		--configs baseline,asyncprobe,asyncprobe-all
	$(Q)ROUNDS=1 tests/bench/syscall_cost.sh
	$(Q)ROUNDS=1 SECONDS_EACH=1 tests/bench/task_cost.sh
	$(Q)tests/bench/clock_precision.py 4

FORMATTED := bpf/*.c bpf/*.h user/*.c user/*.h symbolizer/*.c symbolizer/*.h tests/unit/*.c \
	tests/fuzz/*.c tests/fuzz/*.h

format:
	$(Q)clang-format -i $(FORMATTED)

check-format:
	$(Q)clang-format --dry-run --Werror $(FORMATTED)

clean:
	$(call msg,CLEAN)
	$(Q)rm -rf $(OUTPUT) asyncprobe

.DELETE_ON_ERROR:
.SECONDARY:

# --- fuzzing (libFuzzer) ------------------------------------------------
# One harness per parser of target data and of record files
# (tests/fuzz/fuzz_*.c), each linked with its own instrumented build of
# just the sources it exercises, in .output-fuzz.  `make fuzz` runs each for
# FUZZ_SECONDS (default 300) on a copy of its committed corpus
# (tests/fuzz/corpus/NAME); `make fuzz-smoke` for 10 s each (CI).  A crash,
# sanitizer report, leak or hang fails the target and names the harness
# and the input that did it.  FUZZERS=NAME... narrows the run.
FUZZ_OUT := .output-fuzz
FUZZ_SECONDS ?= 300
FUZZERS ?= linetable debug_offsets fdinfo record elf pyobjects pytasks
FUZZ_CFLAGS := $(filter-out -O% -fsanitize=%,$(CFLAGS)) -O1 \
	-fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=undefined -I$(FUZZ_OUT) -Ibpf -Iuser -Isymbolizer
FUZZ_HDRS := $(wildcard user/*.h symbolizer/*.h) bpf/asyncprobe.h \
	$(FUZZ_OUT)/profile.pb-c.h
fuzz_objs = $(patsubst %,$(FUZZ_OUT)/%.o,$(1))
FUZZ_PY_OBJS := $(call fuzz_objs,symbolizer/pysym symbolizer/pytarget \
	symbolizer/pydebug symbolizer/pyversions symbolizer/linetable \
	symbolizer/elfsym)

.PHONY: fuzz fuzz-smoke fuzz-build

fuzz-build: deps $(addprefix $(FUZZ_OUT)/fuzz_,$(FUZZERS))

fuzz: fuzz-build
	$(Q)tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZERS)

fuzz-smoke: fuzz-build
	$(Q)tests/fuzz/run.sh 10 $(FUZZERS)

# what each harness links: the sources it exercises
$(FUZZ_OUT)/fuzz_linetable: $(call fuzz_objs,symbolizer/linetable)
$(FUZZ_OUT)/fuzz_debug_offsets: \
	$(call fuzz_objs,symbolizer/pydebug symbolizer/pyversions)
$(FUZZ_OUT)/fuzz_fdinfo: $(call fuzz_objs,user/fdinfo)
$(FUZZ_OUT)/fuzz_elf: $(call fuzz_objs,symbolizer/elfsym)
$(FUZZ_OUT)/fuzz_record: $(call fuzz_objs,user/report user/record \
	user/pprof user/output profile.pb-c flamegraph_html)
$(FUZZ_OUT)/fuzz_pyobjects: $(FUZZ_PY_OBJS) tests/fuzz/image.h
$(FUZZ_OUT)/fuzz_pytasks: $(FUZZ_PY_OBJS) \
	$(call fuzz_objs,symbolizer/pytasks) tests/fuzz/image.h

$(FUZZ_OUT)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h
	$(call msg,FUZZ-LD,$@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer $< $(filter %.o,$^) \
		$(LIBS) -o $@

$(FUZZ_OUT)/%.o: %.c $(FUZZ_HDRS) | deps
	$(call msg,FUZZ-CC,$@)
	$(Q)mkdir -p $(@D) && $(CLANG) $(FUZZ_CFLAGS) \
		-fsanitize=fuzzer-no-link -c $< -o $@

# generated: checked by the sanitizers, not steered for coverage
$(FUZZ_OUT)/profile.pb-c.o: $(FUZZ_OUT)/profile.pb-c.c $(FUZZ_OUT)/profile.pb-c.h
	$(call msg,FUZZ-CC,$@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_OUT)/%.pb-c.c $(FUZZ_OUT)/%.pb-c.h: user/%.proto | deps
	$(call msg,PROTOC,$@)
	$(Q)mkdir -p $(@D) && protoc-c --c_out=$(@D) -Iuser $<

$(FUZZ_OUT)/flamegraph_html.o: user/flamegraph.html | deps
	$(call msg,EMBED,$@)
	$(Q)mkdir -p $(@D) && printf '\t.section .rodata\n\t.global ap_flamegraph_html\n\t.type ap_flamegraph_html, @object\nap_flamegraph_html:\n\t.incbin "%s"\n\t.byte 0\n\t.section .note.GNU-stack,"",@progbits\n' \
		$(abspath $<) | $(CLANG) -c -x assembler - -o $@
