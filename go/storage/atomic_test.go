package storage

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestAtomicWriteCreatesThenReplacesWithoutTempFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	stats := &FsyncStats{}
	for _, content := range []string{"one", "two, longer"} {
		if err := AtomicWrite(path, []byte(content), stats, true); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(path); string(got) != content {
			t.Fatalf("file holds %q, want %q", got, content)
		}
	}
	if names := listDir(t, dir); len(names) != 1 {
		t.Errorf("directory holds %v, want only f", names)
	}
	if stats.Count() != 4 { // the file and the directory, twice
		t.Errorf("fsyncs = %d, want 4", stats.Count())
	}
	info, _ := os.Stat(path)
	if info.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600 as Python's mkstemp", info.Mode())
	}
}

func TestAtomicWriteReplacesByRenameNotInPlace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := AtomicWrite(path, []byte("old"), nil, true); err != nil {
		t.Fatal(err)
	}
	reader, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	if err := AtomicWrite(path, []byte("new"), nil, true); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	n, _ := reader.Read(buf)
	if string(buf[:n]) != "old" {
		t.Errorf("an open reader sees %q: the file was changed in place", buf[:n])
	}
}

func TestNonDurableAtomicWriteSkipsFsync(t *testing.T) {
	stats := &FsyncStats{}
	if err := AtomicWrite(filepath.Join(t.TempDir(), "f"), []byte("x"), stats, false); err != nil {
		t.Fatal(err)
	}
	if stats.Count() != 0 {
		t.Errorf("fsyncs = %d, want 0", stats.Count())
	}
}

func TestFailedFsyncKeepsTheOldFileAndRemovesTheTemp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := AtomicWrite(path, []byte("old"), nil, true); err != nil {
		t.Fatal(err)
	}
	failSync(t)
	if err := AtomicWrite(path, []byte("new"), nil, true); err == nil {
		t.Fatal("AtomicWrite succeeded with a failing fsync")
	}
	if got, _ := os.ReadFile(path); string(got) != "old" {
		t.Errorf("file holds %q, want the old bytes", got)
	}
	if names := listDir(t, dir); len(names) != 1 {
		t.Errorf("directory holds %v, want only f", names)
	}
}

// failSync makes every fsync fail until the test ends.
func failSync(t *testing.T) {
	t.Helper()
	syncFile = func(*os.File) error { return syscall.EIO }
	t.Cleanup(func() { syncFile = (*os.File).Sync })
}

func TestCrashBeforeRenameLeavesTheOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, HardStateFileName)
	if err := AtomicWrite(path, EncodeHardState(HardState{Term: 3, Vote: "a"}), nil, true); err != nil {
		t.Fatal(err)
	}
	crashHook = func(point, tmp string) bool { return point == "before-rename" }
	err := AtomicWrite(path, EncodeHardState(HardState{Term: 4, Vote: "b"}), nil, true)
	crashHook = nil
	if !errors.Is(err, errSimulatedCrash) {
		t.Fatalf("AtomicWrite = %v, want the simulated crash", err)
	}
	hs, err := NewHardStateFile(path, nil).Load()
	if err != nil || hs != (HardState{Term: 3, Vote: "a"}) {
		t.Errorf("after the crash Load() = %+v, %v; want the old state", hs, err)
	}
	if names := listDir(t, dir); len(names) != 2 || !IsTempName(names[0]) {
		t.Errorf("directory holds %v, want the old file and the crash's temp file", names)
	}
	removed, err := RemoveStaleTemps(dir)
	if err != nil || len(removed) != 1 {
		t.Errorf("RemoveStaleTemps = %v, %v", removed, err)
	}
}

// The same crash in a real process: the child is killed (SIGKILL, no
// cleanup, no deferred code) after the temporary file is written and
// fsynced, before the rename.
func TestKilledBetweenTempWriteAndRenameLeavesTheOldFile(t *testing.T) {
	if dir := os.Getenv("STORAGE_CRASH_DIR"); dir != "" {
		crashHook = func(point, tmp string) bool {
			if point == "before-rename" {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {}
			}
			return false
		}
		s := NewNodeStorage(dir)
		if _, err := s.Open(); err != nil {
			os.Exit(3)
		}
		s.Persist(Ready{HardState: &HardState{Term: 9, Vote: "new"}})
		os.Exit(4) // not reached
	}
	dir := t.TempDir()
	s := NewNodeStorage(dir)
	if _, err := s.Open(); err != nil {
		t.Fatal(err)
	}
	old := HardState{Term: 2, Vote: "old"}
	if err := s.Persist(Ready{HardState: &old, Entries: []Entry{{Index: 1, Term: 2}}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	before, _ := os.ReadFile(filepath.Join(dir, HardStateFileName))

	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledBetweenTempWriteAndRenameLeavesTheOldFile$")
	cmd.Env = append(os.Environ(), "STORAGE_CRASH_DIR="+dir)
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !strings.Contains(exit.String(), "killed") {
		t.Fatalf("child: %v, want it killed", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, HardStateFileName))
	if string(after) != string(before) {
		t.Errorf("raft_state.json changed:\n%s\nwas\n%s", after, before)
	}
	temps := 0
	for _, name := range listDir(t, dir) {
		if IsTempName(name) {
			temps++
		}
	}
	if temps != 1 {
		t.Errorf("%d temp files after the crash, want 1", temps)
	}
	s = NewNodeStorage(dir)
	got, err := s.Open()
	if err != nil || got.HardState != old || len(got.Entries) != 1 {
		t.Fatalf("Open after the crash = %+v, %v", got, err)
	}
	s.Close()
	for _, name := range listDir(t, dir) {
		if IsTempName(name) {
			t.Errorf("Open left the temp file %s", name)
		}
	}
}

func TestEnsureDirCreatesParentsAndFsyncsEachNewEntry(t *testing.T) {
	base := t.TempDir()
	stats := &FsyncStats{}
	if err := EnsureDir(filepath.Join(base, "a", "b", "c"), stats); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(filepath.Join(base, "a", "b", "c")); err != nil || !info.IsDir() {
		t.Fatalf("not created: %v", err)
	}
	if stats.Count() != 3 {
		t.Errorf("fsyncs = %d, want 3 (one parent per new directory)", stats.Count())
	}
}

func TestStaleTempNames(t *testing.T) {
	for name, want := range map[string]bool{
		".raft.log.abc.tmp": true, "raft.log.tmp": false, ".hidden": false, "member_keys.tmp": false,
	} {
		if IsTempName(name) != want {
			t.Errorf("IsTempName(%q) = %v", name, !want)
		}
	}
}
