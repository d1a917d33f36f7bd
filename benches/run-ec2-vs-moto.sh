#!/usr/bin/env bash
# EC2 front against moto's EC2 server (issue 5, "Speed"): builds the release
# binary, makes target/moto-venv (moto[server] and boto3 from PyPI) once, and
# runs benches/ec2_vs_moto.py with it (needs wrk and curl; 127.0.0.1 only).
#   BENCH_SEQ=200 BENCH_CONC=640 BENCH_DURATION=10s benches/run-ec2-vs-moto.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
cargo build --release --quiet --bin cloudgate
venv=target/moto-venv
if [ ! -x "$venv/bin/moto_server" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check 'moto[server]' boto3
fi
exec "$venv/bin/python" benches/ec2_vs_moto.py "$@"
