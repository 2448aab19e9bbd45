# Sourced by run_tests.sh: the system tools the network-partition tests need
# (tests/test_netns.py, harness/netns.py, `python -m bench chaos --netns`):
# iproute2's `ip` and iptables. As root with apt-get (CI, a fresh container),
# a missing package is installed from the distribution; otherwise a missing
# tool is reported once and those tests skip saying why (under CI they fail:
# CI runs as root and must run them). ZMQNODE_NO_SYSTEM_PACKAGES=1 installs
# nothing. Nothing else on the system is touched.
ensure_system_packages() {
  local missing=() tool pkg
  for tool in ip:iproute2 iptables:iptables; do
    pkg="${tool#*:}"
    tool="${tool%%:*}"
    command -v "$tool" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$tool" >/dev/null 2>&1 \
      || missing+=("$pkg")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  if [ "${ZMQNODE_NO_SYSTEM_PACKAGES:-}" = 1 ]; then
    echo "note: ${missing[*]} missing (ZMQNODE_NO_SYSTEM_PACKAGES=1): the network-partition tests will skip" >&2
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "note: ${missing[*]} missing and not root: the network-partition tests (tests/test_netns.py) will skip;" \
      "they need root anyway (run as root, or: sudo apt-get install ${missing[*]})" >&2
    return 0
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "note: ${missing[*]} missing and no apt-get: install them with the system's package manager," \
      "or the network-partition tests will skip" >&2
    return 0
  fi
  echo "Installing ${missing[*]} (apt-get) for the network-partition tests ..." >&2
  # The package lists may be absent (a fresh container): update once, then retry.
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
      || echo "apt-get install ${missing[*]} failed: the network-partition tests will skip (fail under CI)" >&2
  fi
  return 0
}
