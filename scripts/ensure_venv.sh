# Sourced by run_cluster.sh, run_tests.sh and run_checks.sh: make sure .venv
# exists and holds this package (editable) with the requested extras, one name
# or a comma list as pip spells it (`ensure_venv test`, `ensure_venv test,dev`).
# Re-installs only when setup.cfg or pyproject.toml changed since the last
# install with the same extras.
ensure_venv() {
  local extras="$1"
  local root venv py stamp want
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  venv="$root/.venv"
  py="${PYTHON:-python3}"
  if [ ! -x "$venv/bin/python" ]; then
    if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
      echo "zmqnode needs Python >= 3.10; '$py' is $("$py" --version 2>&1). Set PYTHON=/path/to/python3.x" >&2
      return 1
    fi
    echo "Creating the virtual environment in $venv ..." >&2
    "$py" -m venv "$venv" || { echo "could not create $venv (is the venv module installed? apt-get install python3-venv)" >&2; return 1; }
  fi
  stamp="$venv/.zmqnode-installed-${extras:-base}"
  want="$(cat "$root/setup.cfg" "$root/pyproject.toml" | sha256sum | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "Installing zmqnode${extras:+[$extras]} and its dependencies into $venv ..." >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$root${extras:+[$extras]}" \
      || { echo "pip install failed; see the messages above" >&2; return 1; }
    echo "$want" > "$stamp"
  fi
  VENV_PYTHON="$venv/bin/python"
}
