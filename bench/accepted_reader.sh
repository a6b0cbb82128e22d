#!/usr/bin/env bash
# The accepted-calls reader benchmark (bench/accepted_reader.py: what it
# measures and how). Usage: bench/accepted_reader.sh [N] (default 3).
set -euo pipefail
exec /usr/bin/python3 "$(dirname "$0")/accepted_reader.py" "$@"
