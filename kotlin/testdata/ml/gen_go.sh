#!/usr/bin/env bash
# Writes go_results.json next to this script: what the Go node's trainer and
# leader (go/ml) compute for go/ml/testdata's SUB_TRAIN jobs and TRAINs, so
# MlGoParityTest can check that a Kotlin trainer gives the same float32 bits
# and a Kotlin leader the same model bytes (a Go/Kotlin cluster commits one
# model whichever of the two trained each chunk). Needs the go toolchain.
#   kotlin/testdata/ml/gen_go.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
tmp="$(mktemp -d /tmp/ml-gen-go.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
cp "$root/go/go.mod" "$tmp/"
cp -r "$root/go/ml" "$root/go/pyfmt" "$tmp/"
cat >"$tmp/ml/zz_dump_test.go" <<'EOF'
package ml

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"testing"
)

func TestDumpForKotlin(t *testing.T) {
	var cases []trainChunkCase
	loadGolden(t, "train_chunk.json", &cases)
	chunks := []map[string]any{}
	for _, c := range cases {
		o, err := ParseOptions(c.Options)
		if err != nil {
			t.Fatal(err)
		}
		x, _ := MatrixOf(c.Rows, c.Inputs, f32s(c.X))
		y, _ := MatrixOf(c.Rows, c.Outputs, f32s(c.Y))
		res, err := TrainChunk(f32s(c.Params), x, y, o, c.Round, c.Chunk, c.Epochs)
		if err != nil {
			t.Fatal(err)
		}
		bits := make([]uint32, len(res.Params))
		for i, p := range res.Params {
			bits[i] = math.Float32bits(p)
		}
		chunks = append(chunks, map[string]any{"name": c.Name, "param_bits": bits, "loss": res.Loss})
	}
	var pcs []prepareCase
	loadGolden(t, "prepare.json", &pcs)
	plans := []map[string]any{}
	for _, c := range pcs {
		x, y, o := c.inputs(t)
		m, err := Train(x, y, o, c.Chunks)
		if err != nil {
			t.Fatal(err)
		}
		b, err := m.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		plans = append(plans, map[string]any{"name": c.Name, "model_sha256": hex.EncodeToString(sum[:])})
	}
	data, err := json.MarshalIndent(map[string]any{"chunks": chunks, "plans": plans}, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(os.Getenv("OUT"), append(data, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}
EOF
(cd "$tmp/ml" && OUT="$here/go_results.json" go test -count=1 -run TestDumpForKotlin . >/dev/null)
echo "wrote $here/go_results.json"
