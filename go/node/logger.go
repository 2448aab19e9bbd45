package node

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"zmqnode/storage"
)

// Logger writes Python-format lines (logs.py FORMAT) to stderr and to
// worker_<port>.log; safe for concurrent use (the ZAP handler logs too).
type Logger struct {
	mu    sync.Mutex
	node  string
	file  *os.File
	level int
}

var levels = map[string]int{"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}

// NewLogger opens (appends to) path; path "" logs to stderr only.
func NewLogger(node, path, level string) (*Logger, error) {
	l := &Logger{node: node, level: levels["INFO"]}
	if n, ok := levels[strings.ToUpper(level)]; ok {
		l.level = n
	}
	if path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		l.file = f
	}
	return l, nil
}

// Log writes one line at level on logger name.
func (l *Logger) Log(level, name, format string, args ...any) {
	if l == nil {
		return
	}
	if levels[level] < l.level {
		return
	}
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	line := storage.LogLine(time.Now(), level, l.node, name, msg) + "\n"
	l.mu.Lock()
	defer l.mu.Unlock()
	os.Stderr.WriteString(line)
	if l.file != nil {
		l.file.WriteString(line)
	}
}

// Close closes the log file.
func (l *Logger) Close() {
	if l != nil && l.file != nil {
		l.mu.Lock()
		l.file.Close()
		l.file = nil
		l.mu.Unlock()
	}
}

// For returns printf-style functions bound to a logger name and level.
func (l *Logger) For(level, name string) func(string, ...any) {
	return func(format string, args ...any) { l.Log(level, name, format, args...) }
}
