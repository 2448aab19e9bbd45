package storage

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

type damageOp struct {
	Op     string `json:"op"`
	Offset int    `json:"offset"`
	Bit    uint   `json:"bit"`
	Size   int    `json:"size"`
	Data   string `json:"data"`
}

type damageResult struct {
	Problem    string   `json:"problem"`
	Entries    int      `json:"entries"`
	FirstIndex uint64   `json:"first_index"`
	Digest     string   `json:"digest"`
	Warnings   []string `json:"warnings"`
	Truncated  int      `json:"truncated"`
	Size       int64    `json:"size"`
}

func applyDamage(t *testing.T, data []byte, damage []damageOp) []byte {
	buf := append([]byte(nil), data...)
	for _, d := range damage {
		switch d.Op {
		case "flip":
			if d.Offset < len(buf) {
				buf[d.Offset] ^= 1 << d.Bit
			}
		case "cut":
			if d.Size < len(buf) {
				buf = buf[:d.Size]
			}
		case "append":
			buf = append(buf, unhex(t, d.Data)...)
		case "write":
			patch := unhex(t, d.Data)
			for len(buf) < d.Offset+len(patch) {
				buf = append(buf, 0)
			}
			copy(buf[d.Offset:], patch)
		default:
			t.Fatalf("unknown damage %q", d.Op)
		}
	}
	return buf
}

// TestRandomLogDamageIsDecidedAsPythonDecides: 300 random kinds of damage
// (bit flips, cuts, garbage, zeros, stray records) to one healthy log; for
// each, Python's LogFile.open repaired a torn tail or refused the file, and
// the Go LogFile must do the same, with the same words.
func TestRandomLogDamageIsDecidedAsPythonDecides(t *testing.T) {
	raw, err := os.ReadFile("testdata/cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Damage struct {
			Cases []struct {
				Damage []damageOp   `json:"damage"`
				Result damageResult `json:"result"`
			} `json:"cases"`
		} `json:"damage"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	healthy, err := os.ReadFile("testdata/dirs/damage/raft.log")
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Damage.Cases) == 0 {
		t.Fatal("no damage cases")
	}
	dir := t.TempDir()
	for n, c := range doc.Damage.Cases {
		path := filepath.Join(dir, "raft.log")
		if err := os.WriteFile(path, applyDamage(t, healthy, c.Damage), 0o600); err != nil {
			t.Fatal(err)
		}
		l := NewLogFile(path, nil)
		l.Warn = func(string) {}
		contents, err := l.Open()
		want := c.Result
		if want.Problem != "" {
			if ce, ok := err.(*CorruptionError); !ok || ce.Problem != want.Problem {
				t.Errorf("case %d %+v: Open = %v\nwant problem %q", n, c.Damage, err, want.Problem)
			}
			continue
		}
		if err != nil {
			t.Errorf("case %d %+v: Open = %v, want %d entries", n, c.Damage, err, want.Entries)
			continue
		}
		l.Close()
		digest := sha256.New()
		for _, e := range contents.Entries {
			var head [17]byte
			binary.LittleEndian.PutUint64(head[0:], e.Index)
			binary.LittleEndian.PutUint64(head[8:], e.Term)
			head[16], _ = kindCode(e.Kind)
			digest.Write(head[:])
			digest.Write(e.Data)
		}
		var warnings []string
		for _, w := range want.Warnings {
			warnings = append(warnings, strings.ReplaceAll(w, "{path}", path))
		}
		info, _ := os.Stat(path)
		got := damageResult{
			Entries:    len(contents.Entries),
			FirstIndex: l.FirstIndex(),
			Digest:     hex.EncodeToString(digest.Sum(nil)),
			Warnings:   contents.Warnings,
			Truncated:  contents.TruncatedBytes,
			Size:       info.Size(),
		}
		want.Warnings = warnings
		if !reflect.DeepEqual(got, want) {
			t.Errorf("case %d %+v:\n got %+v\nwant %+v", n, c.Damage, got, want)
		}
	}
}
