#!/usr/bin/env bash
# The compiled engine under AddressSanitizer and UndefinedBehaviorSanitizer.
#
#   tests/engine_asan.sh [pytest args...]
#
# Builds xdrgen/runtime/_engine (every file of xdrgen/runtime/_engine_c/) with
# -fsanitize=address,undefined, runs the engine tests
# (tests/test_engine.py: valid and damaged encodings of demo.x, libvirt, guestfs
# and the Debian corpus, bad values, deep nesting, leak checks) and the
# differential tests against rpcgen on both backends, with libasan preloaded
# (CPython itself is not instrumented), then rebuilds the normal engine.
# Any sanitizer report aborts the run (halt_on_error) with a non-zero status.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD
trap 'python3 -m xdrgen._build_engine --quiet' EXIT
python3 -m xdrgen._build_engine --sanitize --quiet
# The engine really is instrumented (or this run would prove nothing).
symbols=$(nm -D xdrgen/runtime/_engine*.so)
grep -q __asan_report <<<"$symbols" || { echo "engine not instrumented (asan)" >&2; exit 1; }
grep -q __ubsan_handle <<<"$symbols" || { echo "engine not instrumented (ubsan)" >&2; exit 1; }
libasan=$(gcc -print-file-name=libasan.so)
libubsan=$(gcc -print-file-name=libubsan.so)
# detect_leaks=0: CPython's own allocations at exit are not ours (the leak test
# in tests/test_engine.py counts references and memory instead).
export ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export XDRGEN_REQUIRE_ENGINE=1
args=("$@")
if [ ${#args[@]} -eq 0 ]; then
    # (XDRGEN_PURE=0 in a child python would load the instrumented engine without
    # the sanitizer runtime preloaded, which ASan refuses: that test is left out.)
    args=(tests/test_engine.py tests/test_engine_gc.py tests/test_differential_rpcgen.py -q -p no:cacheprovider
          --deselect tests/test_engine.py::test_xdrgen_pure_forces_pure_python)
fi
# Only this interpreter gets the sanitizer runtime: its children (rpcgen's C
# helper, generators) must not inherit LD_PRELOAD.
LD_PRELOAD="$libasan $libubsan" PYTHONMALLOC=malloc python3 -c '
import os, sys
os.environ.pop("LD_PRELOAD")
import pytest
sys.exit(pytest.main(sys.argv[1:]))
' "${args[@]}"
