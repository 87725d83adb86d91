#!/usr/bin/env bash
# Every GPU check in one command (docs/performance.md): benchmarks/gpu_check.sh [--inception PATH] [--dry] ...
# Runs with the repository's .venv when there is one, else $PYTHON, else python3; arguments go to gpu_check.py.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
exec "$PYTHON" benchmarks/gpu_check.py "$@"
