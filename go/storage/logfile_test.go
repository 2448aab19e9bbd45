package storage

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func ents(start uint64, terms ...uint64) []Entry {
	out := make([]Entry, len(terms))
	for k, term := range terms {
		i := start + uint64(k)
		out[k] = Entry{Index: i, Term: term, Kind: EntryCommand, Data: []byte{byte(i), 0, 0xff}}
	}
	return out
}

func openLog(t *testing.T, path string) (*LogFile, LogContents) {
	t.Helper()
	l := NewLogFile(path, nil)
	l.Warn = func(string) {}
	c, err := l.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, c
}

func appendSync(t *testing.T, l *LogFile, entries []Entry) {
	t.Helper()
	if err := l.Append(entries); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Sync(); err != nil {
		t.Fatal(err)
	}
}

func TestNewLogIsEmptyAndStartsAtIndex1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.log")
	l, c := openLog(t, path)
	if len(c.Entries) != 0 || l.FirstIndex() != 1 || l.LastIndex() != 0 || l.Size() != 24 {
		t.Errorf("new log: %+v, %d..%d, %d bytes", c, l.FirstIndex(), l.LastIndex(), l.Size())
	}
	if raw, _ := os.ReadFile(path); !bytes.Equal(raw, EncodeLogHeader(1)) {
		t.Errorf("file = %x", raw)
	}
}

func TestEntriesSurviveCloseAndReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.log")
	l, _ := openLog(t, path)
	want := append(ents(1, 1, 1), Entry{Index: 3, Term: 2, Kind: EntryNoop}, Entry{Index: 4, Term: 2, Kind: EntryConfig, Data: []byte("m")})
	appendSync(t, l, want)
	l.Close()
	_, c := openLog(t, path)
	if !sameEntries(c.Entries, want) {
		t.Errorf("reopened: %+v", c.Entries)
	}
}

func TestManyAppendsNeedOneFsync(t *testing.T) {
	l, _ := openLog(t, filepath.Join(t.TempDir(), "raft.log"))
	before := l.Stats.Count()
	for i := uint64(1); i <= 5; i++ {
		if err := l.Append(ents(i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if synced, _ := l.Sync(); !synced {
		t.Error("Sync had nothing to do")
	}
	if synced, _ := l.Sync(); synced {
		t.Error("a second Sync synced again")
	}
	if n := l.Stats.Count() - before; n != 1 {
		t.Errorf("%d fsyncs, want 1", n)
	}
}

func TestAppendAtAnExistingIndexReplacesTheSuffix(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.log")
	l, _ := openLog(t, path)
	appendSync(t, l, ents(1, 1, 1, 1, 1))
	appendSync(t, l, ents(3, 2))
	if l.LastIndex() != 3 {
		t.Errorf("last index %d, want 3", l.LastIndex())
	}
	l.Close()
	_, c := openLog(t, path)
	if want := append(ents(1, 1, 1), ents(3, 2)...); !sameEntries(c.Entries, want) {
		t.Errorf("reopened: %+v", c.Entries)
	}
	if raw, _ := os.ReadFile(path); !bytes.Equal(raw, encodeLog(t, 1, append(ents(1, 1, 1), ents(3, 2)...))) {
		t.Error("file is not the header and the three records")
	}
}

func TestInvalidAppendsAreRefusedAndLeaveTheFileAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.log")
	l, _ := openLog(t, path)
	appendSync(t, l, ents(1, 2, 2))
	before, _ := os.ReadFile(path)
	for name, batch := range map[string][]Entry{
		"gap":             ents(4, 2),
		"not consecutive": {ents(3, 2)[0], ents(5, 2)[0]},
		"lower term":      ents(3, 1),
		"unknown kind":    {{Index: 3, Term: 2, Kind: EntryKind(7)}},
	} {
		if err := l.Append(batch); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: Append = %v, want ErrInvalidArgument", name, err)
		}
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
		t.Error("a refused append changed the file")
	}
}

func TestAppendBeforeTheFirstIndexIsRefused(t *testing.T) {
	l, _ := openLog(t, filepath.Join(t.TempDir(), "raft.log"))
	appendSync(t, l, ents(1, 1, 1, 1))
	if err := l.Compact(2); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(ents(2, 1)); !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "compacted") {
		t.Errorf("Append = %v", err)
	}
}

func TestAppendsAfterATornTailLandWhereTheTailWas(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.log")
	l, _ := openLog(t, path)
	appendSync(t, l, ents(1, 1, 1))
	l.Close()
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.Write([]byte("\x30\x00\x00\x00half a record"))
	f.Close()
	l, c := openLog(t, path)
	if len(c.Warnings) != 1 || c.TruncatedBytes != 17 || !strings.Contains(c.Warnings[0], "dropped 17 bytes") {
		t.Fatalf("open: %+v", c)
	}
	appendSync(t, l, ents(3, 1))
	l.Close()
	if raw, _ := os.ReadFile(path); !bytes.Equal(raw, encodeLog(t, 1, ents(1, 1, 1, 1))) {
		t.Error("the new record does not follow the whole ones")
	}
}

func TestCompactionKeepsLaterEntriesAndSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.log")
	l, _ := openLog(t, path)
	appendSync(t, l, ents(1, 1, 1, 2, 2, 3))
	if err := l.Append(ents(6, 3)); err != nil { // unsynced: Compact makes it durable
		t.Fatal(err)
	}
	if err := l.Compact(3); err != nil {
		t.Fatal(err)
	}
	if l.FirstIndex() != 4 || l.LastIndex() != 6 {
		t.Errorf("after compaction %d..%d", l.FirstIndex(), l.LastIndex())
	}
	if term, ok := l.TermAt(5); !ok || term != 3 {
		t.Errorf("TermAt(5) = %d, %v", term, ok)
	}
	appendSync(t, l, ents(7, 4))
	l.Close()
	_, c := openLog(t, path)
	if want := ents(4, 2, 3, 3, 4); !sameEntries(c.Entries, want) {
		t.Errorf("reopened: %+v", c.Entries)
	}
}

func TestCompactionPastTheEndLeavesAnEmptyLogContinuingAfterIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.log")
	l, _ := openLog(t, path)
	appendSync(t, l, ents(1, 1, 1))
	if err := l.Compact(10); err != nil {
		t.Fatal(err)
	}
	if l.FirstIndex() != 11 || l.LastIndex() != 10 {
		t.Errorf("%d..%d", l.FirstIndex(), l.LastIndex())
	}
	if raw, _ := os.ReadFile(path); !bytes.Equal(raw, EncodeLogHeader(11)) {
		t.Errorf("file = %x", raw)
	}
}

func TestCompactionChecksTheRecordsItReadsBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.log")
	l, _ := openLog(t, path)
	appendSync(t, l, ents(1, 1, 1, 1, 1))
	// The disk flips a bit in entry 4 while the node runs.
	raw, _ := os.ReadFile(path)
	offset := len(encodeLog(t, 1, ents(1, 1, 1, 1))) + 12
	f, _ := os.OpenFile(path, os.O_WRONLY, 0)
	f.WriteAt([]byte{raw[offset] ^ 8}, int64(offset))
	f.Close()
	err := l.Compact(2)
	var c *CorruptionError
	if !errors.As(err, &c) || !strings.Contains(c.Problem, "has a damaged record at byte") ||
		!strings.Contains(c.Problem, "(entry 4)") {
		t.Errorf("Compact = %v", err)
	}
}

func TestAFailedFsyncMakesTheLogRefuseFurtherUse(t *testing.T) {
	l, _ := openLog(t, filepath.Join(t.TempDir(), "raft.log"))
	if err := l.Append(ents(1, 1)); err != nil {
		t.Fatal(err)
	}
	failSync(t)
	if _, err := l.Sync(); err == nil {
		t.Fatal("Sync succeeded")
	}
	syncFile = (*os.File).Sync
	var broken *BrokenError
	if _, err := l.Sync(); !errors.As(err, &broken) || !strings.Contains(err.Error(), "an earlier fsync failed") {
		t.Errorf("Sync after a failure = %v, want a BrokenError", err)
	}
	if err := l.Append(ents(2, 1)); !errors.As(err, &broken) {
		t.Errorf("Append after a failure = %v, want a BrokenError", err)
	}
}

func TestOpeningTwiceOrAppendingBeforeOpenIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.log")
	if err := NewLogFile(path, nil).Append(ents(1, 1)); !errors.Is(err, ErrNotOpen) {
		t.Errorf("Append before Open = %v", err)
	}
	l, _ := openLog(t, path)
	if _, err := l.Open(); !errors.Is(err, ErrAlreadyOpen) {
		t.Errorf("second Open = %v", err)
	}
}

func TestDamageFarFromTheTailIsFoundInALargeLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.log")
	l, _ := openLog(t, path)
	terms := make([]uint64, 20000)
	for i := range terms {
		terms[i] = 1
	}
	appendSync(t, l, ents(1, terms...))
	l.Close()
	f, _ := os.OpenFile(path, os.O_WRONLY, 0)
	f.WriteAt([]byte{0xff, 0xff}, 24+8) // entry 1's index field
	f.Close()
	_, err := NewLogFile(path, nil).Open()
	var c *CorruptionError
	if !errors.As(err, &c) || !strings.Contains(c.Problem, "damaged in the middle: the record at byte 24 (entry 1)") {
		t.Errorf("Open = %v", err)
	}
}

func encodeLog(t *testing.T, first uint64, entries []Entry) []byte {
	t.Helper()
	b, err := EncodeLog(first, entries)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
