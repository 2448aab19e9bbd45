// Command worker is zmqnode's Go node (issue 17): `cd go && go build -o worker .`.
//
// Subcommands:
//
//	worker sim-core   serve Raft cores over the simulator's line protocol
//	                  (docs/SIMCORE.md) on stdin/stdout, for `python -m tests.sim --impls`
package main

import (
	"fmt"
	"os"

	"zmqnode/simcore"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "sim-core" {
		if err := simcore.Serve(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "sim-core:", err)
			os.Exit(1)
		}
		return
	}
	fmt.Fprintln(os.Stderr, "usage: worker sim-core   (the node itself is not built yet: issue 17)")
	os.Exit(2)
}
