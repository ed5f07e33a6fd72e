# facteur — build, run and test.
#
#   make            build ./build/facteur
#   make run        install missing Debian packages, build, start on etc/dev.conf
#   make check      install missing packages, then every test: unit tests (cmocka)
#                   and black-box tests (pytest), on a normal build and again on an
#                   AddressSanitizer + UndefinedBehaviorSanitizer build
#   make fuzz       build the libFuzzer targets (clang) into build-fuzz/
#
# Sources are found by name: src/**/*.c goes into the program, *_test.c are
# cmocka unit tests, *_fuzz.c are fuzz targets. Adding a file needs no edit here.

PKGS     := libevent libevent_openssl libevent_pthreads libcares sqlite3 openssl
BUILD    ?= build
CC       ?= cc
PYTHON   ?= /usr/bin/python3

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lcrypt -lpthread

WARN     := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
            -Wmissing-prototypes -Wstrict-prototypes -Wpointer-arith -Wvla
CFLAGS   ?= -O2 -g
ALL_CFLAGS = -std=c17 -D_GNU_SOURCE $(WARN) -Isrc $(PKG_CFLAGS) $(CFLAGS) $(EXTRA_CFLAGS)
LDFLAGS  += $(EXTRA_LDFLAGS)

SRC      := $(shell find src -name '*.c' ! -name '*_test.c' ! -name '*_fuzz.c' | sort)
LIB_SRC  := $(filter-out src/main.c,$(SRC))
TEST_SRC := $(shell find src -name '*_test.c' | sort)
FUZZ_SRC := $(shell find src -name '*_fuzz.c' | sort)

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
TESTS    := $(patsubst src/%_test.c,$(BUILD)/test/%_test,$(TEST_SRC))

.PHONY: all run check unit blackbox asan deps fuzz clean format
all: $(BUILD)/facteur

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libfacteur.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/facteur: $(BUILD)/obj/src/main.o $(BUILD)/libfacteur.a
	$(CC) $(ALL_CFLAGS) $^ -o $@ $(LDFLAGS) $(PKG_LIBS)

$(BUILD)/test/%_test: $(BUILD)/obj/src/%_test.o $(BUILD)/libfacteur.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $^ -o $@ $(LDFLAGS) $(PKG_LIBS) -lcmocka

# ---------------------------------------------------------------- tests
unit: $(TESTS)
	@set -e; for t in $(TESTS); do echo "== $$t"; $$t; done

blackbox: $(BUILD)/facteur
	FACTEUR_BIN=$(abspath $(BUILD)/facteur) $(PYTHON) -m pytest -q tests $(PYTEST_ARGS)

SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
asan:
	$(MAKE) BUILD=build-asan CFLAGS="-O1 -g" EXTRA_CFLAGS="$(SAN)" EXTRA_LDFLAGS="$(SAN)" all $(TESTS:build/%=build-asan/%)

check: deps
	$(MAKE) all $(TESTS)
	$(MAKE) unit
	$(MAKE) blackbox
	$(MAKE) asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		$(MAKE) BUILD=build-asan CFLAGS="-O1 -g" EXTRA_CFLAGS="$(SAN)" EXTRA_LDFLAGS="$(SAN)" unit blackbox
	@echo "make check: all tests passed (release and ASan+UBSan builds)"

# ---------------------------------------------------------------- running
deps:
	@scripts/deps.sh

run: deps
	$(MAKE) all
	scripts/run-dev.sh

# ---------------------------------------------------------------- fuzzing
FUZZ_FLAGS := -fsanitize=fuzzer,address,undefined -O1 -g
fuzz:
	@set -e; for f in $(FUZZ_SRC); do \
		$(MAKE) --no-print-directory BUILD=build-fuzz CC=clang CFLAGS="-O1 -g" \
			EXTRA_CFLAGS="-fsanitize=fuzzer-no-link,address,undefined" build-fuzz/libfacteur.a; \
		n=$$(basename $$f .c); mkdir -p build-fuzz/fuzz; \
		clang -std=c17 -D_GNU_SOURCE -Isrc $(PKG_CFLAGS) $(FUZZ_FLAGS) $$f build-fuzz/libfacteur.a \
			-o build-fuzz/fuzz/$$n $(PKG_LIBS); echo "built build-fuzz/fuzz/$$n"; \
	done

format:
	clang-format -i $(shell find src -name '*.[ch]')

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
