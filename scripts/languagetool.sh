#!/usr/bin/env bash
# A real LanguageTool server on loopback, for tests, CI and benchmarks.
#
#   scripts/languagetool.sh fetch              # resolve it into .cache/languagetool/<version>/lib
#   eval "$(scripts/languagetool.sh start)"    # start one instance on 8081, export its URL
#   eval "$(scripts/languagetool.sh start 8081 8082)"   # one JVM per port
#   scripts/languagetool.sh stop [PORT...]     # stop the instances it started (on those ports)
#
# `start` prints `export HEMMA_TEST_LANGUAGETOOL_URL=http://127.0.0.1:8081[,...]` and
# `export HEMMA_TEST_LANGUAGETOOL_VERSION=<version>` on stdout; progress goes to stderr.
#
# The server and its English rules come from Maven Central (org.languagetool:languagetool-server
# and :language-en, resolved with Maven through scripts/languagetool/pom.xml; ~250 MB with
# dependencies, cached in ~/.m2 and copied into .cache). Needs Java 17+ and Maven.
# LANGUAGETOOL_VERSION overrides the pinned version (6.7); LANGUAGETOOL_JAVA_OPTS the JVM flags
# (default -Xmx1g); LANGUAGETOOL_START_TIMEOUT the seconds to wait for a start (default 180).
set -euo pipefail
ver=${LANGUAGETOOL_VERSION:-6.7}
root=$(cd "$(dirname "$0")/.." && pwd)
home="$root/.cache/languagetool"
lib="$home/$ver/lib"
run="$home/run"

fetch() {
  if [ -f "$lib/.complete" ]; then
    return
  fi
  echo "languagetool: resolving LanguageTool $ver from Maven Central into $lib" >&2
  rm -rf "$lib"
  mkdir -p "$lib"
  mkdir -p "$home"
  if ! mvn -q -B -f "$root/scripts/languagetool/pom.xml" dependency:copy-dependencies \
    -Dlanguagetool.version="$ver" -DoutputDirectory="$lib" >"$home/mvn-$ver.log" 2>&1; then
    echo "languagetool: Maven could not resolve LanguageTool $ver; its output:" >&2
    cat "$home/mvn-$ver.log" >&2
    exit 1
  fi
  touch "$lib/.complete"
}

start_one() {
  local port=$1
  if curl -fsS "http://127.0.0.1:$port/v2/healthcheck" >/dev/null 2>&1; then
    echo "languagetool: port $port already answers; refusing to start a second server there" >&2
    exit 1
  fi
  # shellcheck disable=SC2086
  nohup java ${LANGUAGETOOL_JAVA_OPTS:--Xmx1g} -cp "$lib/*" org.languagetool.server.HTTPServer \
    --port "$port" >"$run/$port.log" 2>&1 &
  echo $! >"$run/$port.pid"
}

wait_one() {
  local port=$1 deadline=$(( $(date +%s) + ${LANGUAGETOOL_START_TIMEOUT:-180} ))
  while ! curl -fsS "http://127.0.0.1:$port/v2/healthcheck" >/dev/null 2>&1; do
    if ! kill -0 "$(cat "$run/$port.pid")" 2>/dev/null; then
      echo "languagetool: the server on port $port exited; its log:" >&2
      tail -20 "$run/$port.log" >&2
      exit 1
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "languagetool: port $port did not answer within ${LANGUAGETOOL_START_TIMEOUT:-180} s; log: $run/$port.log" >&2
      exit 1
    fi
    sleep 0.2
  done
}

case "${1:-start}" in
  fetch)
    fetch
    echo "$lib"
    ;;
  start)
    shift || true
    ports=("$@")
    [ ${#ports[@]} -gt 0 ] || ports=(8081)
    command -v java >/dev/null || { echo "languagetool: java (17+) is not installed" >&2; exit 1; }
    fetch
    mkdir -p "$run"
    t0=$(date +%s.%N)
    for port in "${ports[@]}"; do start_one "$port"; done
    urls=()
    for port in "${ports[@]}"; do
      wait_one "$port"
      urls+=("http://127.0.0.1:$port")
    done
    # The first check loads the English rules (several seconds): do it here, not in a test.
    for url in "${urls[@]}"; do
      curl -fsS --data-urlencode "text=Warm up teh server." -d language=en-US "$url/v2/check" >/dev/null
    done
    t1=$(date +%s.%N)
    echo "languagetool: $ver up on ${ports[*]} in $(python3 -c "print(f'{$t1-$t0:.1f}')") s (start + first check)" >&2
    (IFS=,; echo "export HEMMA_TEST_LANGUAGETOOL_URL=${urls[*]}")
    echo "export HEMMA_TEST_LANGUAGETOOL_VERSION=$ver"
    ;;
  stop)
    shift || true
    pidfiles=("$run"/*.pid)
    if [ $# -gt 0 ]; then
      pidfiles=()
      for port in "$@"; do pidfiles+=("$run/$port.pid"); done
    fi
    for pidfile in "${pidfiles[@]}"; do
      [ -e "$pidfile" ] || continue
      kill "$(cat "$pidfile")" 2>/dev/null || true
      rm -f "$pidfile"
    done
    ;;
  *)
    echo "usage: scripts/languagetool.sh [fetch | start [PORT...] | stop [PORT...]]" >&2
    exit 2
    ;;
esac
