#!/usr/bin/env bash
# LanguageTool proxy benchmark against a real LanguageTool: starts N instances on loopback
# (scripts/languagetool.sh; N = HEMMA_BENCH_LANGUAGETOOL_INSTANCES, default 2), runs
# benches/grammar_throughput.rs (checks/s per instance count, real and fake), stops them.
# Each JVM takes about 1 GB; on a machine with few cores the instances share the CPUs, which the
# fake capacity-bound instances in the same run do not.
#
#   benches/grammar.sh [--essays 48] [--concurrency 4]
#   HEMMA_BENCH_LANGUAGETOOL_INSTANCES=3 benches/grammar.sh
set -euo pipefail
cd "$(dirname "$0")/.."
n=${HEMMA_BENCH_LANGUAGETOOL_INSTANCES:-2}
case $n in '' | *[!0-9]* | 0)
  echo "HEMMA_BENCH_LANGUAGETOOL_INSTANCES must be a whole number of at least 1, not '$n'" >&2
  exit 2
  ;;
esac
ports=()
for ((i = 0; i < n; i++)); do ports+=($((18091 + i))); done
trap 'scripts/languagetool.sh stop ${ports[*]}' EXIT
eval "$(scripts/languagetool.sh start "${ports[@]}")"
HEMMA_BENCH_LANGUAGETOOL_URL="$HEMMA_TEST_LANGUAGETOOL_URL" \
  cargo bench --bench grammar_throughput -- "$@"
