#!/usr/bin/env bash
# The Kotlin node's build, from the distribution's packages only (kotlin,
# default-jdk-headless, libjna-java): nothing is downloaded.
#
#   kotlin/build.sh              worker.jar: the seed's command
#                                (kotlinc src/main/kotlin/*.kt -include-runtime -d worker.jar)
#                                with JNA on the class path and in the manifest
#   kotlin/build.sh test [FILTER] also builds tests.jar from src/test/kotlin and
#                                runs every test class (or those whose name
#                                contains FILTER); exit 1 if one fails
#
# OUT=DIR builds into DIR instead of kotlin/ (a helper's scratch build).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${OUT:-$here}"
mkdir -p "$out"
JNA="${JNA_JAR:-/usr/share/java/jna.jar}"
KTEST="${KOTLIN_TEST_JAR:-/usr/share/java/kotlin-test.jar}"
for f in "$JNA" /usr/bin/kotlinc; do
  [ -e "$f" ] || { echo "kotlin/build.sh: $f missing: install kotlin and libjna-java (run_tests.sh does it as root)" >&2; exit 2; }
done
# kotlinc 1.3 on JDK 17 warns about -Xverify:none on every run: drop that line.
quiet() { grep -v -e 'Options -Xverify:none and -noverify were deprecated' || true; }

build_worker() {
  local tmp="$out/.worker.$$.jar"
  kotlinc "$here"/src/main/kotlin/*.kt -cp "$JNA" -jvm-target 1.8 -include-runtime -d "$tmp" 2>&1 | quiet
  [ -s "$tmp" ] || { echo "kotlin/build.sh: kotlinc failed" >&2; exit 1; }
  # java -jar worker.jar finds JNA through the manifest (an absolute path).
  # (kotlinc's manifest already names Main-Class: zmqnode.MainKt.)
  printf 'Class-Path: %s\n' "file:$JNA" >"$out/.manifest.$$"
  (cd "$out" && jar ufm "$tmp" ".manifest.$$")
  rm -f "$out/.manifest.$$"
  mv -f "$tmp" "$out/worker.jar"
}

build_tests() {
  local tmp="$out/.tests.$$.jar"
  kotlinc "$here"/src/test/kotlin/*.kt -cp "$out/worker.jar:$JNA:$KTEST" -jvm-target 1.8 -d "$tmp" 2>&1 | quiet
  [ -s "$tmp" ] || { echo "kotlin/build.sh: kotlinc failed on the tests" >&2; exit 1; }
  mv -f "$tmp" "$out/tests.jar"
}

case "${1:-}" in
  "") build_worker ;;
  test)
    build_worker
    build_tests
    cd "$here"  # tests read testdata/ relative to kotlin/
    exec java -cp "$out/tests.jar:$out/worker.jar:$JNA:$KTEST" zmqnode.test.RunnerKt "${@:2}"
    ;;
  *) echo "usage: kotlin/build.sh [test [FILTER]]" >&2; exit 2 ;;
esac
