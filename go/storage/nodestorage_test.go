package storage

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func openNode(t *testing.T, dir string) (*NodeStorage, Recovered) {
	t.Helper()
	s := NewNodeStorage(dir)
	s.Warn = func(string) {}
	r, err := s.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, r
}

func TestEverythingPersistedIsRecoveredAfterRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node")
	s, r := openNode(t, dir)
	if r.HardState != (HardState{}) || r.Snapshot != nil || len(r.Entries) != 0 {
		t.Fatalf("fresh node: %+v", r)
	}
	hs := HardState{Term: 2, Vote: "127.0.0.1:9002"}
	if err := s.Persist(Ready{HardState: &hs, Entries: ents(1, 1, 2, 2)}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, r = openNode(t, dir)
	if r.HardState != hs || !sameEntries(r.Entries, ents(1, 1, 2, 2)) {
		t.Errorf("recovered %+v", r)
	}
}

func TestOneReadyWithManyEntriesCostsOneFsync(t *testing.T) {
	s, _ := openNode(t, t.TempDir())
	before := s.Stats.Count()
	if err := s.Persist(Ready{Entries: ents(1, 0, 0, 0, 0, 0)}); err != nil {
		t.Fatal(err)
	}
	if n := s.Stats.Count() - before; n != 1 {
		t.Errorf("%d fsyncs, want 1", n)
	}
}

func TestAnUnchangedHardStateIsNotRewritten(t *testing.T) {
	s, _ := openNode(t, t.TempDir())
	hs := HardState{Term: 1, Vote: "a"}
	if err := s.Persist(Ready{HardState: &hs}); err != nil {
		t.Fatal(err)
	}
	before := s.Stats.Count()
	if err := s.Persist(Ready{HardState: &hs}); err != nil {
		t.Fatal(err)
	}
	if s.Stats.Count() != before {
		t.Error("the same hard state was written again")
	}
}

func TestAReadyWithASnapshotReplacesTheWholeLog(t *testing.T) {
	dir := t.TempDir()
	s, _ := openNode(t, dir)
	hs := HardState{Term: 3}
	if err := s.Persist(Ready{HardState: &hs, Entries: ents(1, 1, 1, 1)}); err != nil {
		t.Fatal(err)
	}
	snap := Snapshot{Index: 10, Term: 3, Data: []byte("state"), Membership: []byte("m")}
	if err := s.Persist(Ready{Snapshot: &snap, Entries: ents(11, 3)}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, r := openNode(t, dir)
	if !sameSnapshot(r.Snapshot, &snap) || !sameEntries(r.Entries, ents(11, 3)) || s.Log.FirstIndex() != 11 {
		t.Errorf("recovered %+v", r)
	}
}

func TestCompactionOlderOrBeyondTheLog(t *testing.T) {
	s, _ := openNode(t, t.TempDir())
	hs := HardState{Term: 1}
	if err := s.Persist(Ready{HardState: &hs, Entries: ents(1, 1, 1, 1, 1)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(Snapshot{Index: 9, Term: 1}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Compact beyond the log = %v", err)
	}
	if err := s.Compact(Snapshot{Index: 3, Term: 1, Data: []byte("3")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(Snapshot{Index: 2, Term: 1, Data: []byte("2")}); err != nil {
		t.Fatal(err)
	}
	if s.Snapshot().Index != 3 || s.Log.FirstIndex() != 4 {
		t.Errorf("an older snapshot undid a compaction: %+v, log from %d", s.Snapshot(), s.Log.FirstIndex())
	}
}

func TestPersistBeforeOpenIsAnError(t *testing.T) {
	if err := NewNodeStorage(t.TempDir()).Persist(Ready{Entries: ents(1, 1)}); !errors.Is(err, ErrNotOpen) {
		t.Errorf("Persist before Open = %v", err)
	}
}

func TestCorruptionMessagesNameTheFileTheProblemAndTheRemedy(t *testing.T) {
	dir := t.TempDir()
	s, _ := openNode(t, dir)
	hs := HardState{Term: 1}
	if err := s.Persist(Ready{HardState: &hs, Entries: ents(1, 1)}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	os.WriteFile(filepath.Join(dir, HardStateFileName), nil, 0o600)
	_, err := NewNodeStorage(dir).Open()
	want := filepath.Join(dir, HardStateFileName) + " is empty (a crash should never leave it so: it is " +
		"replaced atomically). It holds this node's term and vote; restore it from a backup or " + Rejoin + "."
	if err == nil || err.Error() != want {
		t.Errorf("Open = %v\nwant   %s", err, want)
	}
}

func TestModelIDs(t *testing.T) {
	store, err := NewModelStore(filepath.Join(t.TempDir(), "models"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"", "../raft_state", "a/b", "a.b", "é", string(make([]byte, 65))} {
		var invalid *InvalidModelIDError
		if err := store.Write(id, nil, true); !errors.As(err, &invalid) {
			t.Errorf("Write(%q) = %v, want InvalidModelIDError", id, err)
		}
		if store.Exists(id) {
			t.Errorf("Exists(%q)", id)
		}
	}
	long := "A_-z9"
	for len(long) < 64 {
		long += "x"
	}
	if err := store.Write(long, []byte("m"), false); err != nil || !store.Exists(long) {
		t.Errorf("the longest valid id: %v", err)
	}
	if _, err := store.Read("absent"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Read(absent) = %v", err)
	}
	if got := (&InvalidModelIDError{ID: "../x"}).Error(); got != "invalid model id '../x': use 1 to 64 letters, digits, '_' or '-'" {
		t.Errorf("message %q", got)
	}
}

func TestJoinedAtReadsWhatPythonsIntAccepts(t *testing.T) {
	dir := t.TempDir()
	for content, want := range map[string]uint64{
		"42\n": 42, " 7 ": 7, "+8": 8, "1_000": 1000, "-3": 0, "": 0, "x": 0, "1__0": 0, "4.0": 0,
	} {
		os.WriteFile(filepath.Join(dir, JoinedAtFileName), []byte(content), 0o600)
		if got := LoadJoinedAt(dir); got != want {
			t.Errorf("LoadJoinedAt(%q) = %d, want %d", content, got, want)
		}
	}
	os.Remove(filepath.Join(dir, JoinedAtFileName))
	if LoadJoinedAt(dir) != 0 {
		t.Error("a missing joined_at is not 0")
	}
}

func TestPythonSpellings(t *testing.T) {
	if got := pyBytesRepr([]byte("it's")); got != `b"it's"` {
		t.Errorf("pyBytesRepr = %s", got)
	}
	if got := pyBytesRepr([]byte("a\"b'c\x00")); got != `b'a"b\'c\x00'` {
		t.Errorf("pyBytesRepr = %s", got)
	}
}

func TestLogLineMatchesPythonsFormat(t *testing.T) {
	tm := mustTime(t, "2026-12-06T20:43:57.123456789Z")
	got := LogLine(tm.UTC(), "WARNING", "127.0.0.1:9001", "zmqnode.storage", "dropped")
	if want := "2026-12-06 20:43:57,123 WARNING [127.0.0.1:9001] zmqnode.storage: dropped"; got != want {
		t.Errorf("LogLine = %q\nwant      %q", got, want)
	}
	if got := LogLine(tm.UTC(), "INFO", "n", "zmqnode", "x"); got != "2026-12-06 20:43:57,123 INFO    [n] zmqnode: x" {
		t.Errorf("LogLine = %q", got)
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func TestTailLogReturnsTheLastLinesAsPythonSplitsThem(t *testing.T) {
	path := filepath.Join(t.TempDir(), WorkerLogName(9001))
	if lines, err := TailLog(path, 3); err != nil || lines != nil {
		t.Errorf("missing file: %v, %v", lines, err)
	}
	os.WriteFile(path, []byte("one\ntwo\r\nthree\rfour\x0cfive\u2028six\n"), 0o600)
	lines, err := TailLog(path, 4)
	if want := []string{"three", "four", "five", "six"}; err != nil || !reflect.DeepEqual(lines, want) {
		t.Errorf("TailLog = %q, %v; want %q", lines, err, want)
	}
}

func TestPersistWritesHardStateThenSnapshotThenEntries(t *testing.T) {
	s, _ := openNode(t, t.TempDir())
	var synced []string
	syncFile = func(f *os.File) error {
		synced = append(synced, filepath.Base(f.Name()))
		return f.Sync()
	}
	t.Cleanup(func() { syncFile = (*os.File).Sync })
	snap := Snapshot{Index: 5, Term: 2, Data: []byte("s")}
	if err := s.Persist(Ready{HardState: &HardState{Term: 2}, Snapshot: &snap, Entries: ents(6, 2)}); err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, name := range synced {
		switch {
		case strings.HasPrefix(name, ".raft_state.json."):
			files = append(files, "raft_state.json")
		case strings.HasPrefix(name, ".snapshot.bin."):
			files = append(files, "snapshot.bin")
		case strings.HasPrefix(name, ".raft.log."):
			files = append(files, "raft.log rewritten")
		case name == "raft.log":
			files = append(files, "raft.log appended")
		}
	}
	want := []string{"raft_state.json", "snapshot.bin", "raft.log rewritten", "raft.log appended"}
	if !reflect.DeepEqual(files, want) {
		t.Errorf("fsync order %q (all: %q), want %q", files, synced, want)
	}
}
