#!/usr/bin/env bash
# Builds and tests what a commit of FILES would leave on main, apart from
# the other files being edited in this working tree: HEAD's kotlin/ plus
# FILES (paths relative to the repository root; a deleted one is removed),
# in a scratch directory. Exit 0 when worker.jar builds and every Kotlin test
# passes (or those matching FILTER=...).
#   kotlin/check-commit.sh kotlin/src/main/kotlin/RaftCore.kt kotlin/src/test/kotlin/RaftCoreTest.kt
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
scratch="$(mktemp -d /tmp/kt-check.XXXXXX)"
trap 'rm -rf "$scratch"' EXIT
if git -C "$root" cat-file -e HEAD:kotlin 2>/dev/null; then
  git -C "$root" archive HEAD kotlin | tar -x -C "$scratch"
fi
# Tests read golden files from ../go/<package>/testdata (and ../tests, ../zmqnode): the tree's own.
for d in go tests zmqnode testdata docs; do ln -s "$root/$d" "$scratch/$d"; done
for f in "$@"; do
  if [ -e "$root/$f" ]; then
    mkdir -p "$scratch/$(dirname "$f")"
    cp -r "$root/$f" "$scratch/$f"
  else
    rm -rf "${scratch:?}/$f"
  fi
done
OUT="$scratch/out" "$scratch/kotlin/build.sh" test ${FILTER:+"$FILTER"}
