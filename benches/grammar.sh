#!/usr/bin/env bash
# LanguageTool proxy benchmark against a real LanguageTool: starts two instances on loopback
# (scripts/languagetool.sh), runs benches/grammar_throughput.rs, stops them.
#
#   benches/grammar.sh [--essays 48] [--concurrency 4]
set -euo pipefail
cd "$(dirname "$0")/.."
trap 'scripts/languagetool.sh stop 18091 18092' EXIT
eval "$(scripts/languagetool.sh start 18091 18092)"
HEMMA_BENCH_LANGUAGETOOL_URL="$HEMMA_TEST_LANGUAGETOOL_URL" \
  cargo bench --bench grammar_throughput -- "$@"
