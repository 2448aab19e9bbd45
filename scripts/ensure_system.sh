# Sourced by run_tests.sh: the system packages the tests need beyond Python.
#   - iproute2's `ip` and iptables: the network-partition tests
#     (tests/test_netns.py, harness/netns.py, `python -m bench chaos --netns`);
#   - Go, pkg-config and libzmq's headers: the Go node (go/, built with cgo;
#     tests/test_go.py and the mixed-cluster tests);
#   - kotlinc, a JDK (java, jar) and JNA: the Kotlin node (kotlin/build.sh;
#     tests/test_kotlin.py and the mixed-cluster tests).
# As root with apt-get (CI, a fresh container), a missing package is installed
# from the distribution; otherwise a missing tool is reported once and those
# tests skip saying why (under CI they fail: CI runs as root and must run
# them). ZMQNODE_NO_SYSTEM_PACKAGES=1 installs nothing. Nothing else on the
# system is touched.
ensure_system_packages() {
  local missing=() tool pkg
  for tool in ip:iproute2 iptables:iptables go:golang-go pkg-config:pkg-config kotlinc:kotlin \
    java:default-jdk-headless jar:default-jdk-headless; do
    pkg="${tool#*:}"
    tool="${tool%%:*}"
    command -v "$tool" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$tool" >/dev/null 2>&1 \
      || missing+=("$pkg")
  done
  [ -e /usr/include/zmq.h ] || pkg-config --exists libzmq 2>/dev/null || missing+=(libzmq3-dev)
  [ -e /usr/share/java/jna.jar ] || missing+=(libjna-java)
  # java and jar come from one package: name it once.
  [ "${#missing[@]}" -eq 0 ] || mapfile -t missing < <(printf '%s\n' "${missing[@]}" | awk '!seen[$0]++')
  [ "${#missing[@]}" -eq 0 ] && return 0
  if [ "${ZMQNODE_NO_SYSTEM_PACKAGES:-}" = 1 ]; then
    echo "note: ${missing[*]} missing (ZMQNODE_NO_SYSTEM_PACKAGES=1): the tests that need them will skip" >&2
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "note: ${missing[*]} missing and not root: the tests that need them (network partitions, the Go and Kotlin nodes)" \
      "will skip (run as root, or: sudo apt-get install ${missing[*]})" >&2
    return 0
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "note: ${missing[*]} missing and no apt-get: install them with the system's package manager," \
      "or the tests that need them will skip" >&2
    return 0
  fi
  echo "Installing ${missing[*]} (apt-get) for the network-partition, Go and Kotlin node tests ..." >&2
  # The package lists may be absent (a fresh container): update once, then retry.
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
      || echo "apt-get install ${missing[*]} failed: the tests that need them will skip (fail under CI)" >&2
  fi
  return 0
}
