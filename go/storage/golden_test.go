package storage

// Interop: testdata/gen.py writes storage directories with the Python
// storage classes and records what Python made of them (cases.json); these
// tests check that the Go code gets the same values, the same errors, and
// writes the same bytes.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

type goldenEntry struct {
	Index uint64 `json:"index"`
	Term  uint64 `json:"term"`
	Kind  string `json:"kind"`
	Data  string `json:"data"`
}

type goldenSnapshot struct {
	Index      uint64 `json:"index"`
	Term       uint64 `json:"term"`
	Data       string `json:"data"`
	Membership string `json:"membership"`
}

type goldenHardState struct {
	Term    uint64 `json:"term"`
	Vote    string `json:"vote"`
	VoteHex string `json:"vote_hex"`
}

type openCase struct {
	Error      string            `json:"error"`
	Path       string            `json:"path"`
	Problem    string            `json:"problem"`
	Advice     string            `json:"advice"`
	HardState  *goldenHardState  `json:"hard_state"`
	Snapshot   *goldenSnapshot   `json:"snapshot"`
	Entries    []goldenEntry     `json:"entries"`
	Warnings   []string          `json:"warnings"`
	FirstIndex uint64            `json:"first_index"`
	LastIndex  uint64            `json:"last_index"`
	After      map[string]string `json:"after"`
	Absent     bool              `json:"absent"`
}

type writeOp struct {
	Op        string           `json:"op"`
	HardState *goldenHardState `json:"hard_state"`
	Entries   []goldenEntry    `json:"entries"`
	Snapshot  *goldenSnapshot  `json:"snapshot"`
}

type goldenCases struct {
	Open  map[string]openCase `json:"open"`
	Write map[string]struct {
		Ops   []writeOp `json:"ops"`
		Files []string  `json:"files"`
	} `json:"write"`
	Small struct {
		ModelIDs   []string          `json:"model_ids"`
		Models     map[string]string `json:"models"`
		MemberKeys []string          `json:"member_keys"`
		JoinedAt   uint64            `json:"joined_at"`
	} `json:"small"`
	Encodings struct {
		HardStates []struct {
			Term  uint64 `json:"term"`
			Vote  string `json:"vote"`
			Bytes string `json:"bytes"`
		} `json:"hard_states"`
		Headers []struct {
			FirstIndex uint64 `json:"first_index"`
			Bytes      string `json:"bytes"`
		} `json:"headers"`
		Records []struct {
			Entry goldenEntry `json:"entry"`
			Bytes string      `json:"bytes"`
		} `json:"records"`
		Snapshots []struct {
			Snapshot goldenSnapshot `json:"snapshot"`
			Bytes    string         `json:"bytes"`
		} `json:"snapshots"`
	} `json:"encodings"`
}

func loadCases(t *testing.T) *goldenCases {
	t.Helper()
	raw, err := os.ReadFile("testdata/cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var c goldenCases
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var kindNames = map[string]EntryKind{"noop": EntryNoop, "command": EntryCommand, "config": EntryConfig}

func (g goldenEntry) entry(t *testing.T) Entry {
	kind, ok := kindNames[g.Kind]
	if !ok {
		t.Fatalf("unknown kind %q", g.Kind)
	}
	return Entry{Index: g.Index, Term: g.Term, Kind: kind, Data: unhex(t, g.Data)}
}

func (g *goldenSnapshot) snapshot(t *testing.T) *Snapshot {
	if g == nil {
		return nil
	}
	return &Snapshot{Index: g.Index, Term: g.Term, Data: unhex(t, g.Data), Membership: unhex(t, g.Membership)}
}

func sameEntries(a, b []Entry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Index != b[i].Index || a[i].Term != b[i].Term || a[i].Kind != b[i].Kind ||
			!bytes.Equal(a[i].Data, b[i].Data) {
			return false
		}
	}
	return true
}

func sameSnapshot(a, b *Snapshot) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Index == b.Index && a.Term == b.Term && bytes.Equal(a.Data, b.Data) &&
		bytes.Equal(a.Membership, b.Membership)
}

// copyDir copies a committed case (hidden files included) to dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// fileDigests is gen.py's files_of: relative path -> SHA-256 hex.
func fileDigests(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	if _, err := os.Stat(dir); err != nil {
		return out
	}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		sum := sha256.Sum256(data)
		out[filepath.ToSlash(rel)] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestGoldenOpenMatchesPython(t *testing.T) {
	cases := loadCases(t)
	names := make([]string, 0, len(cases.Open))
	for name := range cases.Open {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		want := cases.Open[name]
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), name)
			if !want.Absent {
				copyDir(t, filepath.Join("testdata", "dirs", "open", name), dir)
			}
			fill := func(s string) string { return strings.ReplaceAll(s, "{dir}", dir) }
			var warned []string
			s := NewNodeStorage(dir)
			s.Warn = func(m string) { warned = append(warned, m) }
			got, err := s.Open()
			if want.Error != "" {
				var c *CorruptionError
				if !errors.As(err, &c) {
					t.Fatalf("Open() = %v, want a CorruptionError", err)
				}
				if c.Path != fill(want.Path) || c.Advice != want.Advice {
					t.Errorf("path, advice = %q, %q\nwant %q, %q", c.Path, c.Advice, fill(want.Path), want.Advice)
				}
				if c.Problem != fill(want.Problem) {
					t.Errorf("problem = %q\nwant      %q", c.Problem, fill(want.Problem))
				}
			} else {
				if err != nil {
					t.Fatalf("Open() = %v", err)
				}
				defer s.Close()
				if got.HardState != (HardState{Term: want.HardState.Term, Vote: string(unhex(t, want.HardState.VoteHex))}) {
					t.Errorf("hard state = %+v, want %+v", got.HardState, *want.HardState)
				}
				if !sameSnapshot(got.Snapshot, want.Snapshot.snapshot(t)) {
					t.Errorf("snapshot = %+v, want %+v", got.Snapshot, want.Snapshot)
				}
				var entries []Entry
				for _, e := range want.Entries {
					entries = append(entries, e.entry(t))
				}
				if !sameEntries(got.Entries, entries) {
					t.Errorf("entries = %+v\nwant %+v", got.Entries, entries)
				}
				warnings := []string{}
				for _, w := range want.Warnings {
					warnings = append(warnings, fill(w))
				}
				if !sameStrings(got.Warnings, warnings) || !sameStrings(warned, warnings) {
					t.Errorf("warnings = %q (logged %q)\nwant %q", got.Warnings, warned, warnings)
				}
				if s.Log.FirstIndex() != want.FirstIndex || s.Log.LastIndex() != want.LastIndex {
					t.Errorf("log = %d..%d, want %d..%d", s.Log.FirstIndex(), s.Log.LastIndex(),
						want.FirstIndex, want.LastIndex)
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			}
			// What open left on disk (repairs included) is byte-identical.
			if after := fileDigests(t, dir); !reflect.DeepEqual(after, want.After) {
				t.Errorf("files after Open:\n got %v\nwant %v", after, want.After)
			}
		})
	}
}

func TestGoldenWritesAreByteIdentical(t *testing.T) {
	cases := loadCases(t)
	for name, c := range cases.Write {
		c := c
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), name)
			s := NewNodeStorage(dir)
			if _, err := s.Open(); err != nil {
				t.Fatal(err)
			}
			for _, op := range c.Ops {
				var err error
				switch op.Op {
				case "persist":
					rd := Ready{Snapshot: op.Snapshot.snapshot(t)}
					if op.HardState != nil {
						rd.HardState = &HardState{Term: op.HardState.Term, Vote: op.HardState.Vote}
					}
					for _, e := range op.Entries {
						rd.Entries = append(rd.Entries, e.entry(t))
					}
					err = s.Persist(rd)
				case "compact":
					err = s.Compact(*op.Snapshot.snapshot(t))
				default:
					t.Fatalf("unknown op %q", op.Op)
				}
				if err != nil {
					t.Fatalf("%s: %v", op.Op, err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "dirs", "write", name)
			want, got := fileDigests(t, golden), fileDigests(t, dir)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("files:\n got %v\nwant %v", got, want)
			}
			names := make([]string, 0, len(got))
			for n := range got {
				names = append(names, n)
			}
			sort.Strings(names)
			if !reflect.DeepEqual(names, c.Files) {
				t.Errorf("file names = %v, want %v", names, c.Files)
			}
		})
	}
}

func TestGoldenEncodings(t *testing.T) {
	c := loadCases(t).Encodings
	for _, h := range c.HardStates {
		got := EncodeHardState(HardState{Term: h.Term, Vote: h.Vote})
		if want := unhex(t, h.Bytes); !bytes.Equal(got, want) {
			t.Errorf("EncodeHardState(%d, %q) =\n%s\nwant\n%s", h.Term, h.Vote, got, want)
		}
		hs, err := DecodeHardState("x", got)
		if err != nil || hs != (HardState{Term: h.Term, Vote: h.Vote}) {
			t.Errorf("DecodeHardState(EncodeHardState(%d, %q)) = %+v, %v", h.Term, h.Vote, hs, err)
		}
	}
	for _, h := range c.Headers {
		if got, want := EncodeLogHeader(h.FirstIndex), unhex(t, h.Bytes); !bytes.Equal(got, want) {
			t.Errorf("EncodeLogHeader(%d) = %x, want %x", h.FirstIndex, got, want)
		}
	}
	for _, r := range c.Records {
		if got, err := EncodeRecord(r.Entry.entry(t)); err != nil || !bytes.Equal(got, unhex(t, r.Bytes)) {
			t.Errorf("EncodeRecord(%+v) = %x, %v; want %s", r.Entry, got, err, r.Bytes)
		}
	}
	for _, s := range c.Snapshots {
		snap := s.Snapshot.snapshot(t)
		want := unhex(t, s.Bytes)
		if got := EncodeSnapshot(*snap); !bytes.Equal(got, want) {
			t.Errorf("EncodeSnapshot(%+v) = %x, want %x", s.Snapshot, got, want)
		}
		back, err := DecodeSnapshot("x", want)
		if err != nil || !sameSnapshot(&back, snap) {
			t.Errorf("DecodeSnapshot = %+v, %v", back, err)
		}
	}
}

func TestGoldenSmallFiles(t *testing.T) {
	c := loadCases(t).Small
	golden := filepath.Join("testdata", "dirs", "small")
	models, err := NewModelStore(filepath.Join(golden, "models"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := models.IDs()
	if err != nil || !reflect.DeepEqual(ids, c.ModelIDs) {
		t.Errorf("IDs() = %v, %v; want %v", ids, err, c.ModelIDs)
	}
	for id, want := range c.Models {
		if got, err := models.Read(id); err != nil || !bytes.Equal(got, unhex(t, want)) {
			t.Errorf("Read(%q) = %q, %v", id, got, err)
		}
	}
	if got := NewMemberKeys(golden).Reload(); !reflect.DeepEqual(got, c.MemberKeys) {
		t.Errorf("member keys = %v, want %v", got, c.MemberKeys)
	}
	if got := LoadJoinedAt(golden); got != c.JoinedAt {
		t.Errorf("LoadJoinedAt = %d, want %d", got, c.JoinedAt)
	}

	// Written by Go, the same bytes.
	dir := t.TempDir()
	goModels, err := NewModelStore(filepath.Join(dir, "models"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for id, data := range c.Models {
		if err := goModels.Write(id, unhex(t, data), true); err != nil {
			t.Fatal(err)
		}
	}
	if err := NewMemberKeys(dir).Write(c.MemberKeys); err != nil {
		t.Fatal(err)
	}
	if err := SaveJoinedAt(dir, c.JoinedAt, nil); err != nil {
		t.Fatal(err)
	}
	want := fileDigests(t, golden)
	delete(want, "models/stray.txt")
	delete(want, "models/bad id!.bin")
	if got := fileDigests(t, dir); !reflect.DeepEqual(got, want) {
		t.Errorf("files written by Go:\n got %v\nwant %v", got, want)
	}
}

func sameStrings(a, b []string) bool {
	return len(a) == len(b) && (len(a) == 0 || reflect.DeepEqual(a, b))
}

// TestGoldenJSONLoadsMatchesPython: what raft_state.json's reader makes of
// odd JSON texts — the value (as Python's repr) or Python's exact error.
func TestGoldenJSONLoadsMatchesPython(t *testing.T) {
	raw, err := os.ReadFile("testdata/cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		JSON []struct {
			Input string `json:"input"`
			Error string `json:"error"`
			Repr  string `json:"repr"`
			Type  string `json:"type"`
		} `json:"json"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil || len(doc.JSON) == 0 {
		t.Fatalf("cases.json: %v", err)
	}
	for _, c := range doc.JSON {
		input := unhex(t, c.Input)
		v, err := pyJSONLoads(input)
		switch {
		case c.Error != "" && (err == nil || err.Error() != c.Error):
			t.Errorf("loads(%q) = %s, %v\nwant error %s", input, pyRepr(v), err, c.Error)
		case c.Error == "" && err != nil:
			t.Errorf("loads(%q) = %v, want %s", input, err, c.Repr)
		case c.Error == "" && (pyRepr(v) != c.Repr || pyTypeName(v) != c.Type):
			t.Errorf("loads(%q) = %s (%s), want %s (%s)", input, pyRepr(v), pyTypeName(v), c.Repr, c.Type)
		}
	}
}
