package node

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestParseArgsTakesTheSeedsCommandLine(t *testing.T) {
	t.Setenv("ZMQNODE_KEYS", "")
	for _, peers := range [][]string{
		{"--peers", "127.0.0.1:9001,127.0.0.1:9002"},
		{"--peers", "127.0.0.1:9001", "127.0.0.1:9002"},
		{"--peers=127.0.0.1:9001,127.0.0.1:9002"},
	} {
		args := append([]string{"--host", "127.0.0.1", "--port", "9000", "--monitor-port", "8000",
			"--raft-port", "10000"}, peers...)
		args = append(args, "--storage-dir", "d", "--insecure")
		c, err := ParseArgs(args)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(c.Peers, []string{"127.0.0.1:9001", "127.0.0.1:9002"}) || c.MonitorPort != 8000 ||
			c.StorageDir != "d" || !c.Insecure() || c.NodeID() != "127.0.0.1:9000" {
			t.Fatalf("%v: %+v", peers, c)
		}
	}
}

func TestParseArgsDefaultsAreThePythonNodes(t *testing.T) {
	c, err := ParseArgs([]string{"--port", "9100", "--insecure"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Host != "127.0.0.1" || c.MonitorPort != 8100 || c.HTTPListenPort() != 14100 || !c.HTTPEnabled() ||
		c.Tick != 50*time.Millisecond || c.ElectionTicks != 10 || c.MaxRequestBytes != 512<<20 ||
		c.MaxModelBytes != 64<<20 || c.MaxTrainings != 4 || c.MaxPending != 10000 ||
		c.MaxUncommittedBytes != 256<<20 || c.SnapshotEntries != 1000 || c.FetchChunkBytes != 1<<20 ||
		c.StorageDir != "node_9100_storage" || c.ClientAuth != "none" || !c.Trainer {
		t.Fatalf("%+v", c)
	}
}

func TestParseArgsRefusesWhatPythonRefuses(t *testing.T) {
	t.Setenv("ZMQNODE_KEYS", "")
	for name, args := range map[string][]string{
		"raft port off the layout": {"--port", "9000", "--raft-port", "10001", "--insecure"},
		"tick":                     {"--tick", "0", "--insecure"},
		"election ticks":           {"--election-ticks", "1", "--insecure"},
		"fetch chunk":              {"--fetch-chunk-bytes", "10", "--insecure"},
		"max pending":              {"--max-pending", "0", "--insecure"},
		"curve without CURVE":      {"--client-auth", "curve", "--insecure"},
		"unknown flag":             {"--frob"},
		"remote without keys":      {"--host", "10.0.0.1"},
		"empty ZMQNODE_KEYS":       {},
	} {
		if _, err := ParseArgs(args); err == nil {
			t.Errorf("%s: accepted %v", name, args)
		} else if !errors.As(err, new(*UsageError)) {
			t.Errorf("%s: %T", name, err)
		}
	}
}
