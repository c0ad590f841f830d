#!/usr/bin/env bash
# churnwatch beside Quix Streams on the same broker and workload, runs alternating, for the
# ratio BENCHMARKS.md reports:
#   benches/peer/side_by_side.sh [ROUNDS [EVENTS [SUBSCRIBERS]]]   (defaults 3 1000000 100000)
# Uses ../shared/peer-quix (setup.sh, run.sh, churnwatch_run.sh) beside this repository and
# target/release/churnwatch (built here if missing). churnwatch keeps its changelog on, as
# Quix does: the broker is started through ./mockbroker, which adds the changelog topic
# (librdkafka's mock cluster cannot create topics). Prints one line per run and the medians.
# With kcat on the PATH (Debian: kcat), each round also times kcat draining the same topic on
# the same broker (../shared/peer-quix/kcat_run.sh: librdkafka's C consumer doing no work,
# start-up included), and churnwatch's share of that raw consume rate is printed beside the
# ratio. KCAT=0 leaves the kcat leg out.
# Each round also runs churnwatch on the same workload in protobuf (./churnwatch-proto: gen.py's
# JSON copied to the cdr-pb topic as protobuf before the service starts); PROTO=0 leaves it out.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PEER="${PEER:-$REPO/../shared/peer-quix}"
ROUNDS=${1:-3}; EVENTS=${2:-1000000}; SUBS=${3:-100000}
BIN="$REPO/target/release/churnwatch"
[ -x "$BIN" ] || (cd "$REPO" && cargo build --release)
if [ "${PROTO:-1}" != 0 ]; then
  TRANSCODE=$(cd "$REPO" && cargo bench --bench peer_transcode --no-run --message-format=json 2>/dev/null \
    | grep '"name":"peer_transcode"' | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
  [ -x "$TRANSCODE" ] || { echo "could not build the peer_transcode bench"; exit 1; }
  export TRANSCODE
fi
"$PEER/setup.sh" >/dev/null
OUT=$(mktemp -d -t side-by-side.XXXXXX)
field() { awk -v k="$1" 'index($0, k) == 1 { print $NF }' "$2" | tail -1; }
for r in $(seq "$ROUNDS"); do
  "$PEER/run.sh" "$EVENTS" "$SUBS" >"$OUT/quix.$r" 2>&1 || { tail -5 "$OUT/quix.$r"; exit 1; }
  q=$(grep -o '"events_per_s": [0-9]*' "$OUT/quix.$r" | awk '{print $2}' | tail -1)
  if [ -z "$q" ]; then
    q=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["events_per_s"])' \
      "$(grep -o '/tmp/peer-quix-run[^ ]*result.json' "$OUT/quix.$r" | tail -1)")
  fi
  MOCK="$HERE/mockbroker" "$PEER/churnwatch_run.sh" "$BIN" "$EVENTS" "$SUBS" >"$OUT/cw.$r" 2>&1 \
    || { tail -5 "$OUT/cw.$r"; exit 1; }
  c=$(field "events/second" "$OUT/cw.$r")
  grep -q "STREAK CHECK: PASS" "$OUT/cw.$r" || { echo "churnwatch run $r: streak check failed"; exit 1; }
  printf 'round %s: quix %s events/s; churnwatch %s events/s (CPU %s s, max RSS %s MB); ratio %s\n' \
    "$r" "$q" "$c" "$(field 'process CPU s' "$OUT/cw.$r")" "$(field 'max RSS MB' "$OUT/cw.$r")" \
    "$(awk -v a="$c" -v b="$q" 'BEGIN { printf "%.1f", a / b }')"
  p=0
  if [ "${PROTO:-1}" != 0 ]; then
    CDR_PB=1 MOCK="$HERE/mockbroker" CHURNWATCH_BIN="$BIN" "$PEER/churnwatch_run.sh" "$HERE/churnwatch-proto" \
      "$EVENTS" "$SUBS" >"$OUT/cw-pb.$r" 2>&1 || { tail -5 "$OUT/cw-pb.$r"; exit 1; }
    p=$(field "events/second" "$OUT/cw-pb.$r")
    grep -q "STREAK CHECK: PASS" "$OUT/cw-pb.$r" || { echo "churnwatch protobuf run $r: streak check failed"; exit 1; }
    printf 'round %s: churnwatch on protobuf %s events/s (CPU %s s, max RSS %s MB); ratio %s\n' \
      "$r" "$p" "$(field 'process CPU s' "$OUT/cw-pb.$r")" "$(field 'max RSS MB' "$OUT/cw-pb.$r")" \
      "$(awk -v a="$p" -v b="$q" 'BEGIN { printf "%.1f", a / b }')"
  fi
  k=0
  if [ "${KCAT:-1}" != 0 ] && command -v kcat >/dev/null; then
    "$PEER/kcat_run.sh" "$EVENTS" "$SUBS" >"$OUT/kcat.$r" 2>&1 || { tail -5 "$OUT/kcat.$r"; exit 1; }
    k=$(field "events/second" "$OUT/kcat.$r")
    printf 'round %s: kcat %s events/s; churnwatch at %s%% of it\n' "$r" "$k" \
      "$(awk -v a="$c" -v b="$k" 'BEGIN { printf "%.0f", 100 * a / b }')"
  fi
  echo "$q $c $k $p" >>"$OUT/pairs"
done
mq=$(sort -n -k1 "$OUT/pairs" | awk '{ q[NR] = $1 } END { print q[int((NR + 1) / 2)] }')
mc=$(sort -n -k2 "$OUT/pairs" | awk '{ c[NR] = $2 } END { print c[int((NR + 1) / 2)] }')
awk -v q="$mq" -v c="$mc" 'BEGIN { printf "median: quix %d events/s, churnwatch %d events/s, ratio %.1f\n", q, c, c / q }'
mk=$(sort -n -k3 "$OUT/pairs" | awk '{ k[NR] = $3 } END { print k[int((NR + 1) / 2)] }')
if [ "$mk" != 0 ]; then
  awk -v k="$mk" -v c="$mc" 'BEGIN { printf "median: kcat %d events/s; churnwatch at %.0f%% of the raw consume rate\n", k, 100 * c / k }'
fi
mp=$(sort -n -k4 "$OUT/pairs" | awk '{ p[NR] = $4 } END { print p[int((NR + 1) / 2)] }')
if [ "$mp" != 0 ]; then
  awk -v q="$mq" -v p="$mp" 'BEGIN { printf "median: churnwatch on protobuf %d events/s, ratio %.1f\n", p, p / q }'
fi
echo "logs: $OUT"
