// Command worker is zmqnode's Go node (issue 17): `cd go && go build -o worker .`.
//
//	worker --host H --port P --peers H:P,H:P --storage-dir D [...]
//	                  a cluster member: the flags, defaults and port offsets
//	                  of `python -m zmqnode` (zmqnode/config.py); see go/node
//	worker sim-core   serve Raft cores over the simulator's line protocol
//	                  (docs/SIMCORE.md) on stdin/stdout, for `python -m tests.sim --impls`
package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"zmqnode/node"
	"zmqnode/simcore"
	"zmqnode/storage"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "sim-core" {
		if err := simcore.Serve(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "sim-core:", err)
			os.Exit(1)
		}
		return
	}
	os.Exit(runNode(os.Args[1:]))
}

func runNode(args []string) int {
	cfg, err := node.ParseArgs(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "usage: worker [--host H] [--port P] [--peers H:P,H:P] [--storage-dir D] ...\nworker: error: %v\n", err)
		return 2
	}
	n, err := node.New(cfg)
	if err != nil {
		return fatal(nil, cfg, err)
	}
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-signals
		n.Stop()
	}()
	if err := n.Run(); err != nil {
		return fatal(n, cfg, err)
	}
	return 0
}

// fatal reports what stopped the node as one line (CRITICAL in the node's
// log when it has one) and returns the exit status: 2 for damaged storage,
// unusable keys or a broken invariant (as __main__.py), 1 otherwise.
func fatal(n *node.Node, cfg *node.Config, err error) int {
	message := fmt.Sprintf("node not started: %v", err)
	var fe *node.FatalError
	status := 1
	if errors.As(err, &fe) {
		status = node.ExitStorageDamaged
	} else {
		message = err.Error()
	}
	if n != nil && n.Log != nil {
		n.Log.Log("CRITICAL", "zmqnode.storage", "%s", message)
	} else {
		logger, lerr := node.NewLogger(cfg.NodeID(), cfg.LogPath(), cfg.LogLevel)
		if lerr == nil {
			logger.Log("CRITICAL", "zmqnode.storage", "%s", message)
			logger.Close()
		} else {
			fmt.Fprintln(os.Stderr, "zmqnode:", message)
		}
	}
	_ = storage.LogFileName
	return status
}
