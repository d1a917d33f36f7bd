#!/usr/bin/env bash
# OCCI front benchmark (issue 4, "Speed"): builds the release binary and runs
# benches/occi_bench.py (needs wrk and curl; 127.0.0.1 only). Prints figures.
#   BENCH_VMS=10000 BENCH_UPLOAD_MIB=1024 BENCH_DURATION=10s benches/run-occi.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
cargo build --release --quiet --bin cloudgate
exec python3 benches/occi_bench.py "$@"
