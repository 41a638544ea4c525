#!/usr/bin/env bash
# Runs every fuzz target (docs/fuzzing.md) with cargo fuzz for SECONDS_PER_TARGET seconds each
# (default 60), one after another, and says which found something. Not part of CI: CI replays the
# committed corpora in ordinary `cargo test`.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]    # e.g. scripts/fuzz.sh 300 tokenize
#
# Targets: matrix_decode (proto/fuzz), cache_entry (client/runs/fuzz), read_essays
# (client/cli/fuzz), compat_request (service/server/fuzz), tokenize and annotate
# (service/spacy/fuzz).
#
# Needs cargo-fuzz (installed from crates.io when missing) and nightly features: a nightly
# toolchain when rustup has one, else RUSTC_BOOTSTRAP=1 on the installed toolchain. The builds go
# to target/fuzz (one for all the fuzz crates), new inputs to target/fuzz-corpus/<target>
# (scratch), logs to target/fuzz-logs/<target>.log. The committed corpus <crate>/fuzz/corpus/
# <target>/ is only read: nothing is copied into it automatically.
#
# A finding is saved as <crate>/fuzz/artifacts/<target>/crash-* (or timeout-*, oom-*). To keep it:
#   1. minimise it:  cargo +nightly fuzz tmin --fuzz-dir <crate>/fuzz --target-dir target/fuzz <target> <artifact>
#   2. fix the bug in the crate it belongs to, with a unit test;
#   3. copy the minimised input into <crate>/fuzz/corpus/<target>/regression-<what-it-was>, so
#      `cargo test` replays it from then on.
# To fold a long run's scratch corpus into the committed one (keep the total under 1 MB):
#   cargo +nightly fuzz cmin --fuzz-dir <crate>/fuzz --target-dir target/fuzz <target> target/fuzz-corpus/<target>
# then copy the files worth keeping (named seed-*, stress-* or regression-*) into the corpus.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
case $seconds in '' | *[!0-9]*)
  echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]" >&2
  exit 2
  ;;
esac

all=(
  proto/fuzz:matrix_decode
  client/runs/fuzz:cache_entry
  client/cli/fuzz:read_essays
  service/server/fuzz:compat_request
  service/spacy/fuzz:tokenize
  service/spacy/fuzz:annotate
)
selected=()
for entry in "${all[@]}"; do
  if [ $# -eq 0 ] || [[ " $* " == *" ${entry#*:} "* ]]; then selected+=("$entry"); fi
done
if [ ${#selected[@]} -eq 0 ]; then
  echo "no such target: $*; the targets are: ${all[*]#*:}" >&2
  exit 2
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz is missing: installing it from crates.io" >&2
  cargo install cargo-fuzz --locked
fi
cargo=(cargo)
if rustup run nightly rustc --version >/dev/null 2>&1; then
  cargo=(cargo +nightly)
else
  echo "no nightly toolchain: using RUSTC_BOOTSTRAP=1 on $(rustc --version)" >&2
  export RUSTC_BOOTSTRAP=1
fi

mkdir -p target/fuzz-logs
failed=()
for entry in "${selected[@]}"; do
  dir=${entry%%:*}
  name=${entry#*:}
  scratch=target/fuzz-corpus/$name
  log=target/fuzz-logs/$name.log
  mkdir -p "$scratch"
  echo "== $name ($dir): building, then ${seconds}s"
  # The scratch corpus first: libFuzzer writes new inputs to the first folder only.
  if "${cargo[@]}" fuzz run --fuzz-dir "$dir" --target-dir target/fuzz "$name" \
    "$scratch" "$dir/corpus/$name" -- \
    -max_total_time="$seconds" -timeout=30 -print_final_stats=1 >"$log" 2>&1; then
    status=ok
  else
    status="FOUND SOMETHING (see $log and $dir/artifacts/$name/)"
    failed+=("$name")
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  echo "   $name: ${execs:-?} inputs run, $status"
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found something in: ${failed[*]}" >&2
  exit 1
fi
echo "no findings in ${#selected[@]} target(s), ${seconds}s each"
