package storage

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// TempSuffix ends every temporary file AtomicWrite creates; they are also
// hidden (leading dot), so a listing of models/ or snapshot/ can never
// mistake one for real data (atomic.py TEMP_SUFFIX).
const TempSuffix = ".tmp"

// FsyncStats counts the fsyncs a storage object made and how long the last
// one took. NodeStorage shares one with its files and the node's ModelStore;
// compaction fsyncs model files through it from another goroutine, so it is
// safe for concurrent use.
type FsyncStats struct {
	// OnFsync, when set, is told each fsync's duration (metrics). Set it
	// before the first fsync.
	OnFsync func(time.Duration)

	mu    sync.Mutex
	count int
	total time.Duration
	last  time.Duration
}

// syncFile is f.Sync; tests replace it to make an fsync fail.
var syncFile = (*os.File).Sync

// Fsync fsyncs f and records how long it took.
func (s *FsyncStats) Fsync(f *os.File) error {
	start := time.Now()
	err := syncFile(f)
	elapsed := time.Since(start)
	s.mu.Lock()
	s.count++
	s.total += elapsed
	s.last = elapsed
	hook := s.OnFsync
	s.mu.Unlock()
	if hook != nil {
		hook(elapsed)
	}
	return err
}

// Count is the number of fsyncs of files and directories so far.
func (s *FsyncStats) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// Total is the time spent in them.
func (s *FsyncStats) Total() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// Last is how long the last one took.
func (s *FsyncStats) Last() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

func orNew(stats *FsyncStats) *FsyncStats {
	if stats == nil {
		return &FsyncStats{}
	}
	return stats
}

// FsyncDir makes the directory's entries (creations, renames, removals)
// durable.
func FsyncDir(path string, stats *FsyncStats) error {
	d, err := os.OpenFile(path, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer d.Close()
	return orNew(stats).Fsync(d)
}

// crashHook, when set (tests only), is called at the named points of
// AtomicWrite; returning true stops the write there as if the process died:
// nothing is cleaned up.
var crashHook func(point, tmp string) bool

var errSimulatedCrash = errors.New("simulated crash")

// AtomicWrite replaces path with data atomically, and durably unless
// durable is false (then a crash may leave the old file, or an empty or
// partial new one, which the caller must detect, e.g. by a checksum, and
// rewrite).
//
// The bytes go to a temporary file in the same directory, named
// ".<name>.<random>.tmp" (mode 0600, as Python's mkstemp), are fsynced, the
// file is renamed over path (atomic on POSIX) and the directory is fsynced
// so the rename itself survives a power cut. On an I/O error the old file is
// untouched and the temporary file removed.
func AtomicWrite(path string, data []byte, stats *FsyncStats, durable bool) error {
	dir, name := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+name+".*"+TempSuffix)
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	fail := func(err error) error {
		tmp.Close()
		os.Remove(tmpName)
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		return fail(err)
	}
	if durable {
		if err := orNew(stats).Fsync(tmp); err != nil {
			return fail(err)
		}
	}
	if crashHook != nil && crashHook("before-rename", tmpName) {
		tmp.Close()
		return errSimulatedCrash
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmpName)
		return err
	}
	if err := os.Rename(tmpName, path); err != nil {
		os.Remove(tmpName)
		return err
	}
	if durable {
		return FsyncDir(dir, stats)
	}
	return nil
}

// EnsureDir creates path (and missing parents) so that the creation
// survives a crash: each new directory's parent is fsynced.
func EnsureDir(path string, stats *FsyncStats) error {
	var missing []string
	for p := filepath.Clean(path); ; p = filepath.Dir(p) {
		if info, err := os.Stat(p); err == nil && info.IsDir() {
			break
		}
		missing = append(missing, p)
		if filepath.Dir(p) == p {
			break
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Mkdir(missing[i], 0o777); err != nil {
			// Made meanwhile by someone else is fine; a file in the way is not.
			if info, serr := os.Stat(missing[i]); !errors.Is(err, fs.ErrExist) || serr != nil || !info.IsDir() {
				return err
			}
		}
		if err := FsyncDir(filepath.Dir(missing[i]), stats); err != nil {
			return err
		}
	}
	return nil
}

// IsTempName reports whether name is a temporary file AtomicWrite creates.
func IsTempName(name string) bool {
	return strings.HasPrefix(name, ".") && strings.HasSuffix(name, TempSuffix)
}

// RemoveStaleTemps deletes the temporary files a crash left in dir and
// returns their names, sorted. A missing dir has none.
func RemoveStaleTemps(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	var removed []string
	for _, name := range names {
		if !IsTempName(name) {
			continue
		}
		err := os.Remove(filepath.Join(dir, name))
		if err == nil {
			removed = append(removed, name)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return removed, err
		}
	}
	return removed, nil
}

// SyncFiles fsyncs each file that still exists, then the directory holding
// them (compaction.py sync_files: model files are written without fsync and
// must be durable before the log forgets the entries that wrote them).
func SyncFiles(paths []string, dir string, stats *FsyncStats) error {
	for _, p := range paths {
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		err = orNew(stats).Fsync(f)
		f.Close()
		if err != nil {
			return err
		}
	}
	return FsyncDir(dir, stats)
}
