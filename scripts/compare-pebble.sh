#!/usr/bin/env bash
# Server CPU per certificate, Cobble vs Debian's Pebble, under the same client workload:
# N sequential lego runs (new account, order, http-01 answered by lego, finalize, download),
# validation switched off on both servers (PEBBLE_VA_ALWAYS_VALID / --va-always-valid) so
# the figure is the ACME server's own work. CPU is the server process's utime+stime from
# /proc, not wall time. Loopback only.
#   scripts/compare-pebble.sh [N] [path/to/cobble]   (default N=20, target/release/cobble)
set -euo pipefail
N=${1:-20}
COBBLE=${2:-target/release/cobble}
command -v pebble >/dev/null && command -v lego >/dev/null || { echo "needs Debian's pebble and lego" >&2; exit 1; }
[ -x "$COBBLE" ] || { echo "build it first: cargo build --release -p cobble" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
TICKS=$(getconf CLK_TCK)
cpu_ms() { awk -v t="$TICKS" '{print ($14+$15)*1000/t}' "/proc/$1/stat"; }
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

run_clients() { # $1 = directory URL, $2 = trust root
  for i in $(seq 1 "$N"); do
    LEGO_CA_CERTIFICATES="$2" lego --server "$1" --path "$WORK/lego-$3-$i" --accept-tos --email "l$i@example.com" \
      --domains "n$i.example.com" --http --http.port 127.0.0.1:5002 run >/dev/null 2>&1 || { echo "lego run $i failed against $3" >&2; exit 1; }
  done
}

# Cobble (SQLite file, the embedded default).
"$COBBLE" serve --data-dir "$WORK/cobble" --listen 127.0.0.1:14100 --admin-listen "" --va-always-valid --log warn ${COBBLE_ARGS:-} >/dev/null 2>&1 &
CPID=$!
wait_port 14100
start=$(cpu_ms $CPID); t0=$(date +%s.%N)
run_clients https://localhost:14100/dir "$WORK/cobble/tls/ca.pem" cobble
c_cpu=$(echo "$(cpu_ms $CPID) - $start" | bc); c_wall=$(echo "$(date +%s.%N) - $t0" | bc)
kill $CPID; wait $CPID 2>/dev/null || true

# Pebble, on Cobble's HTTPS certificate for localhost.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/key.pem" -out "$WORK/cert.pem" \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -days 2 2>/dev/null
cat > "$WORK/pebble.json" <<JSON
{"pebble": {"listenAddress": "127.0.0.1:14200", "managementListenAddress": "127.0.0.1:15200",
  "certificate": "$WORK/cert.pem", "privateKey": "$WORK/key.pem", "httpPort": 5002, "tlsPort": 5001,
  "ocspResponderURL": "", "externalAccountBindingRequired": false}}
JSON
PEBBLE_VA_ALWAYS_VALID=1 PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 pebble -config "$WORK/pebble.json" >/dev/null 2>&1 &
PPID_=$!
wait_port 14200
start=$(cpu_ms $PPID_); t0=$(date +%s.%N)
run_clients https://localhost:14200/dir "$WORK/cert.pem" pebble
p_cpu=$(echo "$(cpu_ms $PPID_) - $start" | bc); p_wall=$(echo "$(date +%s.%N) - $t0" | bc)

printf 'server CPU per certificate over %d lego runs:\n' "$N"
printf '  cobble: %.2f ms (wall %.1f s for all runs)\n' "$(echo "$c_cpu / $N" | bc -l)" "$c_wall"
printf '  pebble: %.2f ms (wall %.1f s for all runs)\n' "$(echo "$p_cpu / $N" | bc -l)" "$p_wall"
printf '  ratio pebble/cobble: %.1f\n' "$(echo "$p_cpu / $c_cpu" | bc -l)"
