// Command loraflow is the user CLI: it runs LoRA pipelines on Temporal
// (starting a local dev server and worker when none is configured), and
// exposes the engine, provenance, registry and schedule operations.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// commandFactories holds the constructors of every subcommand. Each
// subcommand lives in its own cmd_*.go file and registers itself in init,
// so that independent features never edit the same file.
var commandFactories []func() *cobra.Command

func register(f func() *cobra.Command) { commandFactories = append(commandFactories, f) }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "loraflow",
		Short:         "Durable, auditable LoRA fine-tuning pipelines on Temporal",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, f := range commandFactories {
		root.AddCommand(f())
	}
	return root
}

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "loraflow:", err)
		os.Exit(1)
	}
}
