#!/usr/bin/env bash
# Launch a local zmqnode cluster (creating .venv and installing on first use).
#
#   ./run_cluster.sh            start 3 nodes in the background, wait for a leader
#   ./run_cluster.sh -n 5       start 5 nodes
#   ./run_cluster.sh status     who runs, who leads
#   ./run_cluster.sh stop       stop every node started here (SIGTERM, then SIGKILL)
#   ./run_cluster.sh clean      stop, then delete node*_storage and .cluster
#   ./run_cluster.sh watch      live console of the running nodes (python -m client watch)
#   ./run_cluster.sh -f         start, then show the console in the foreground;
#                               Ctrl-C leaves it and stops the nodes (also --foreground)
#   ./run_cluster.sh --insecure start without CURVE (plaintext, anyone may join)
#   ./run_cluster.sh add        start one more node that joins the running cluster
#                               and becomes a voter (--learner: stays a read replica)
#   ./run_cluster.sh remove N   take node N out of the cluster, stop it, delete its storage
#   ./run_cluster.sh --impls py,go,py
#                               each node's implementation, the list repeating over -n
#                               nodes: py (python -m zmqnode), go (go/worker, built
#                               first; needs Go and libzmq's headers) or kotlin
#                               (java -jar kotlin/worker.jar, built first by
#                               kotlin/build.sh; needs kotlin and libjna-java); also with add
#
# Node i listens on client port 9000+i, monitor 8000+i, raft 10000+i (the
# seed's layout) and keeps its data in node<i>_storage/. Process ids and
# stdout/stderr live in .cluster/; the cluster's CURVE keys in .cluster/keys
# (made on first start). Each start records that path in
# ${XDG_CONFIG_HOME:-~/.config}/zmqnode/keys: python -m client finds the keys
# from any directory.
set -euo pipefail
cd "$(dirname "$0")"
ROOT="$(pwd)"
STATE="$ROOT/.cluster"
HOST="${ZMQNODE_HOST:-127.0.0.1}"
BASE_PORT=9000
N=3
CMD=start
FOREGROUND=0
INSECURE=0
LEARNER=0
REMOVE=""
IMPLS=py
KEYS="$STATE/keys"

while [ $# -gt 0 ]; do
  case "$1" in
    -n) N="${2:?-n needs a number of nodes}"; shift 2 ;;
    -n*) N="${1#-n}"; shift ;;
    start|stop|status|clean|watch|add) CMD="$1"; shift ;;
    remove) CMD=remove; REMOVE="${2:?remove needs a node number}"; shift 2 ;;
    --learner) LEARNER=1; shift ;;
    --impls) [ $# -ge 2 ] || { echo "--impls needs a list such as py,go,py" >&2; exit 2; }
      IMPLS="$2"; shift 2 ;;
    --impls=*) IMPLS="${1#--impls=}"; shift ;;
    -f|--foreground) FOREGROUND=1; shift ;;
    --insecure) INSECURE=1; shift ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
case "$N" in ''|*[!0-9]*) echo "-n wants a number, got '$N'" >&2; exit 2 ;; esac
IFS=, read -r -a IMPL_LIST <<<"$IMPLS"
[ "${#IMPL_LIST[@]}" -gt 0 ] || { echo "--impls wants a list such as py,go,py" >&2; exit 2; }
for impl in "${IMPL_LIST[@]}"; do
  case "$impl" in py|go|kotlin) ;; *) echo "--impls: '$impl' is not py, go or kotlin" >&2; exit 2 ;; esac
done

impl_of() {  # node i -> its implementation: the --impls list, repeating
  echo "${IMPL_LIST[$(($1 % ${#IMPL_LIST[@]}))]}"
}

GO_WORKER=""
ensure_go_worker() {  # go/worker up to date (harness/gobuild.py), or a clear message
  [ -n "$GO_WORKER" ] && return 0
  . scripts/ensure_system.sh
  ensure_system_packages 2>/dev/null
  if ! command -v go >/dev/null 2>&1 && [ ! -x /usr/bin/go ]; then
    echo "a Go node needs the Go toolchain: install golang-go and libzmq3-dev" \
      "(as root ./run_tests.sh or ./run_cluster.sh installs them; otherwise:" \
      "sudo apt-get install golang-go libzmq3-dev pkg-config)" >&2
    return 1
  fi
  if [ ! -e /usr/include/zmq.h ] && ! pkg-config --exists libzmq 2>/dev/null; then
    echo "a Go node needs libzmq's headers (zmq.h): sudo apt-get install libzmq3-dev pkg-config" >&2
    return 1
  fi
  echo "building go/worker if its sources changed (harness/gobuild.py) ..."
  if ! GO_WORKER="$("$VENV_PYTHON" -c '
import sys
from harness.gobuild import GoBuildError, ensure_worker
try:
    print(ensure_worker())
except GoBuildError as exc:
    sys.exit(str(exc))
')"; then
    GO_WORKER=""
    echo "could not build go/worker (see above; by hand: cd go && go build -o worker .)" >&2
    return 1
  fi
}

KT_COMMAND=()
ensure_kotlin_worker() {  # kotlin/worker.jar up to date, and the command that starts it (harness.ktbuild), or a clear message
  [ "${#KT_COMMAND[@]}" -gt 0 ] && return 0
  echo "building kotlin/worker.jar if its sources changed ..."
  local out
  if ! out="$("$VENV_PYTHON" -c '
import sys
from harness.cluster import kotlin_worker
from harness.ktbuild import java_command
try:
    print("\n".join(java_command(kotlin_worker())))
except Exception as exc:
    sys.exit(str(exc))
')"; then
    echo "could not build kotlin/worker.jar (see above; by hand: kotlin/build.sh)" >&2
    return 1
  fi
  mapfile -t KT_COMMAND <<<"$out"
}

PROGRAM=()
node_program() {  # implementation -> PROGRAM, the command that runs such a node
  case "$1" in
    go) PROGRAM=("$GO_WORKER") ;;
    kotlin) PROGRAM=("${KT_COMMAND[@]}") ;;
    *) PROGRAM=("$VENV_PYTHON" -m zmqnode) ;;
  esac
}

# The per-user place python -m client looks in (zmqnode/transport/keystore.py):
# $XDG_CONFIG_HOME if absolute, as the XDG spec says, else ~/.config.
config_dir() {
  case "${XDG_CONFIG_HOME:-}" in
    /*) echo "$XDG_CONFIG_HOME/zmqnode" ;;
    *) echo "${HOME:-}/.config/zmqnode" ;;
  esac
}

record_keys() {  # so that python -m client finds $KEYS from any directory
  local dir tmp
  dir="$(config_dir)"
  tmp="$dir/keys.$$"
  if mkdir -p -m 700 "$dir" 2>/dev/null && printf '%s\n' "$KEYS" >"$tmp" 2>/dev/null \
      && mv -f "$tmp" "$dir/keys"; then
    echo "recorded the keys' place in $dir/keys (python -m client finds them from any directory)"
  else
    rm -f "$tmp"
    echo "note: could not write $dir/keys; outside $ROOT give python -m client --keys $KEYS" >&2
  fi
}

forget_keys() {  # clean: the record must not point at deleted keys
  local record
  record="$(config_dir)/keys"
  if [ "$(cat "$record" 2>/dev/null)" = "$KEYS" ]; then rm -f "$record"; fi
}

running_pids() {
  local f pid
  for f in "$STATE"/node*.pid; do
    [ -e "$f" ] || continue
    pid="$(cat "$f")"
    if kill -0 "$pid" 2>/dev/null; then echo "$pid"; else rm -f "$f"; fi
  done
}

status_line() {  # port, implementation -> one line from the node's /status
  "$VENV_PYTHON" - "$1" "$2" <<'PY'
import json, sys, urllib.request
port, impl = int(sys.argv[1]), sys.argv[2]
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=1) as r:
        s = json.load(r)
    # STATUS does not name the implementation: it is what ./run_cluster.sh started.
    print(f"{s['node']:<16} {impl:<3} {s['role']:<10} term {s['term']:<4} "
          f"leader {s['leader'] or '-':<16} commit {s['commit_index']:<5} models {s['models']}")
except Exception as exc:
    print(f"monitor 127.0.0.1:{port} ({impl}) not answering ({exc.__class__.__name__})")
PY
}

started_impl() {  # node i -> the implementation it was started as (py before --impls existed)
  cat "$STATE/node$1.impl" 2>/dev/null || echo py
}

do_stop() {
  local pids pid i
  pids="$(running_pids)"
  [ -z "$pids" ] && { echo "no nodes running"; return 0; }
  for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
  for i in $(seq 50); do
    [ -z "$(running_pids)" ] && break
    sleep 0.1
  done
  for pid in $(running_pids); do kill -KILL "$pid" 2>/dev/null || true; done
  rm -f "$STATE"/node*.pid "$STATE"/node*.impl
  echo "stopped $(echo "$pids" | wc -w) node(s)"
}

do_status() {
  local f i
  for f in "$STATE"/node*.pid; do
    [ -e "$f" ] || { echo "no nodes started from here (./run_cluster.sh to start)"; return 0; }
    i="$(basename "$f" .pid)"; i="${i#node}"
    if kill -0 "$(cat "$f")" 2>/dev/null; then
      status_line $((8000 + i)) "$(started_impl "$i")"
    else
      echo "node $i ($(started_impl "$i")): not running (see $STATE/node$i.out)"
    fi
  done
}

do_watch() {  # the console of the nodes started from here, until Ctrl-C
  local f i nodes=""
  for f in "$STATE"/node*.pid; do
    [ -e "$f" ] || continue
    i="$(basename "$f" .pid)"; i="${i#node}"
    nodes="${nodes:+$nodes,}$HOST:$((BASE_PORT + i))"
  done
  [ -n "$nodes" ] || { echo "no nodes started from here (./run_cluster.sh to start)"; return 1; }
  "$VENV_PYTHON" -m client watch --nodes "$nodes"
}

client_args() {  # how python -m client reaches this cluster
  if [ "$INSECURE" = 1 ] || [ ! -e "$KEYS/cluster.key" ]; then echo "--insecure"; fi
}

do_add() {  # one more node: join through a running one, then (unless --learner) promote
  local i=0 f running="" sec
  for f in "$STATE"/node*.pid; do
    [ -e "$f" ] || continue
    f="$(basename "$f" .pid)"; f="${f#node}"
    [ "$f" -ge "$i" ] && i=$((f + 1))
    kill -0 "$(cat "$STATE/node$f.pid")" 2>/dev/null && running="$HOST:$((BASE_PORT + f))"
  done
  [ -n "$running" ] || { echo "no running node to join (./run_cluster.sh first)" >&2; return 1; }
  local -a security=(--insecure)
  if [ -e "$KEYS/cluster.key_secret" ]; then
    [ -e "$KEYS/node$i.key_secret" ] \
      || "$VENV_PYTHON" -m zmqnode keygen --dir "$KEYS" --node "node$i" >/dev/null
    security=(--keys "$KEYS" --node-key "$KEYS/node$i.key_secret")
  fi
  local impl="${IMPL_LIST[0]}"  # add --impls go: the new node is a Go one
  if [ "$impl" = go ]; then ensure_go_worker || return 1; fi
  if [ "$impl" = kotlin ]; then ensure_kotlin_worker || return 1; fi
  rm -rf "node${i}_storage"
  node_program "$impl"
  nohup "${PROGRAM[@]}" --host "$HOST" --port $((BASE_PORT + i)) \
    --monitor-port $((8000 + i)) --join "$running" --storage-dir "node${i}_storage" \
    "${security[@]}" >"$STATE/node$i.out" 2>&1 &
  echo $! >"$STATE/node$i.pid"
  echo "$impl" >"$STATE/node$i.impl"
  echo "node $i ($impl, $HOST:$((BASE_PORT + i))) is joining through $running ..."
  sec="$(client_args)"
  # shellcheck disable=SC2086
  for _ in $(seq 100); do
    "$VENV_PYTHON" -m client $sec --json members 2>/dev/null | grep -q "\"$HOST:$((BASE_PORT + i))\"" && break
    sleep 0.3
  done
  if [ "$LEARNER" = 1 ]; then
    echo "node $i joined as a learner (a read replica)"
  else
    # shellcheck disable=SC2086
    "$VENV_PYTHON" -m client $sec members add "$HOST:$((BASE_PORT + i))"
  fi
}

do_remove() {  # take node N out, stop it, forget its storage
  local i="$REMOVE" sec pid
  case "$i" in ''|*[!0-9]*) echo "remove wants a node number, got '$i'" >&2; return 2 ;; esac
  sec="$(client_args)"
  # shellcheck disable=SC2086
  "$VENV_PYTHON" -m client $sec members remove "$HOST:$((BASE_PORT + i))"
  if [ -e "$STATE/node$i.pid" ]; then
    pid="$(cat "$STATE/node$i.pid")"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$STATE/node$i.pid" "$STATE/node$i.impl"
  fi
  rm -rf "node${i}_storage"
  echo "removed node $i ($HOST:$((BASE_PORT + i))) and deleted node${i}_storage"
}

do_start() {
  if [ -n "$(running_pids)" ]; then
    echo "a cluster is already running here:"; do_status
    echo "(./run_cluster.sh stop first to restart it)"; return 1
  fi
  mkdir -p "$STATE"
  local i j peers start impl
  local -a security
  for i in $(seq 0 $((N - 1))); do
    if [ "$(impl_of "$i")" = go ]; then ensure_go_worker || return 1; break; fi
  done
  for i in $(seq 0 $((N - 1))); do
    if [ "$(impl_of "$i")" = kotlin ]; then ensure_kotlin_worker || return 1; break; fi
  done
  if [ "$INSECURE" = 1 ]; then
    echo "WARNING: --insecure: no encryption and no authentication; use python -m client --insecure"
  else
    for i in $(seq 0 $((N - 1))); do
      if [ ! -e "$KEYS/node$i.key_secret" ]; then  # first start, or more nodes than before
        "$VENV_PYTHON" -m zmqnode keygen --dir "$KEYS" --nodes "$N" --force >/dev/null
        echo "created the cluster's keys in $KEYS"
        break
      fi
    done
    record_keys
  fi
  start=$(date +%s.%N)
  for i in $(seq 0 $((N - 1))); do
    peers=""
    for j in $(seq 0 $((N - 1))); do
      [ "$i" = "$j" ] || peers="$peers $HOST:$((BASE_PORT + j))"
    done
    if [ "$INSECURE" = 1 ]; then
      security=(--insecure)
    else
      security=(--keys "$KEYS" --node-key "$KEYS/node$i.key_secret")
    fi
    impl="$(impl_of "$i")"
    node_program "$impl"
    # shellcheck disable=SC2086
    nohup "${PROGRAM[@]}" --host "$HOST" --port $((BASE_PORT + i)) \
      --monitor-port $((8000 + i)) --raft-port $((10000 + i)) \
      --peers $peers --storage-dir "node${i}_storage" "${security[@]}" \
      >"$STATE/node$i.out" 2>&1 &
    echo $! >"$STATE/node$i.pid"
    echo "$impl" >"$STATE/node$i.impl"
  done
  if [ "$IMPLS" = py ]; then
    echo "started $N nodes; waiting for a leader ..."
  else
    echo "started $N nodes ($(for i in $(seq 0 $((N - 1))); do printf "%s" "${i/#[1-9]*/ }$(impl_of "$i")"; done)); waiting for a leader ..."
  fi
  if ! "$VENV_PYTHON" - "$N" "$start" <<'PY'
import json, sys, time, urllib.request
n, t0 = int(sys.argv[1]), float(sys.argv[2])
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    for i in range(n):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{8000 + i}/status", timeout=0.5) as r:
                s = json.load(r)
        except Exception:
            continue
        if s["role"] == "leader":
            print(f"leader {s['node']} elected in term {s['term']}, "
                  f"{time.time() - t0:.2f}s after ./run_cluster.sh started")
            sys.exit(0)
    time.sleep(0.05)
sys.exit(1)
PY
  then
    echo "no leader after 20 s. Node output:" >&2
    tail -n 5 "$STATE"/node*.out >&2
    return 1
  fi
  do_status
  cat <<EOF

Try:
  $VENV_PYTHON -m client train-inline "0,0;0,1;1,0;1,1" "0;1;1;0"
  $VENV_PYTHON -m client list
  $VENV_PYTHON -m client predict <model_id> "1,0"
  curl http://127.0.0.1:8000/status
  curl http://127.0.0.1:$((BASE_PORT + 5000))/v2/health/ready    # HTTP inference (docs/HTTP.md;
                                       # token: $KEYS/http.token)
Logs: node<i>_storage/worker_<port>.log (also .cluster/node<i>.out).  Stop: ./run_cluster.sh stop
EOF
}

. scripts/ensure_venv.sh
ensure_venv ""
case "$CMD" in
  start)
    if [ "$FOREGROUND" = 1 ]; then
      do_start
      # Ctrl-C ends the console (exit 0); then the nodes are stopped. A
      # handler, not '' (ignored): the console must still receive SIGINT.
      trap 'true' INT
      trap 'do_stop' EXIT
      do_watch || true
    else
      do_start
    fi ;;
  watch) do_watch ;;
  add) do_add ;;
  remove) do_remove ;;
  stop) do_stop ;;
  status) do_status ;;
  clean) do_stop; forget_keys; rm -rf node*_storage "$STATE"; echo "removed node*_storage and .cluster" ;;
esac
