package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/loraflow/loraflow/artifact"
	"github.com/loraflow/loraflow/internal/temporalx"
)

func init() { register(newDevCmd) }

// The embedded default's dev server outlives the command that started it
// (as `temporal server start-dev` left running does), so that `status`,
// `runs ls`, `cancel` and the Web UI keep working after `run` has exited.
// Its state file in the data folder says which process and port it is.
const (
	devDBFile    = "temporal.db"
	devLogFile   = "temporal.log"
	devStateFile = "dev.json"
)

// devState is what the state file records of a running dev server.
type devState struct {
	PID     int       `json:"pid"`
	Port    int       `json:"port"`
	UIPort  int       `json:"ui_port,omitempty"`
	DB      string    `json:"db"`
	Log     string    `json:"log"`
	Started time.Time `json:"started"`
}

func readDevState(dataDir string) (*devState, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, devStateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s devState
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dataDir, devStateFile), err)
	}
	if !temporalx.IsDevServer(s.PID) {
		// Stale: the server died or the machine restarted.
		_ = os.Remove(filepath.Join(dataDir, devStateFile))
		return nil, nil
	}
	return &s, nil
}

// ensureDevServer returns the running dev server, starting one (detached,
// so it outlives this process) when none runs. started says whether this
// call started it.
func ensureDevServer(ctx context.Context, out io.Writer, dataDir string, port int, ui bool) (st *devState, started bool, err error) {
	st, err = readDevState(dataDir)
	if err != nil {
		return nil, false, err
	}
	if st != nil {
		if st.Port != port {
			return nil, false, fmt.Errorf("the embedded default's dev server already runs on port %d (pid %d) with %s; use --dev-port %d, or `loraflow dev stop` first",
				st.Port, st.PID, st.DB, st.Port)
		}
		return st, false, nil
	}
	addr := devAddress(port)
	if temporalx.Reachable(addr, 500*time.Millisecond) {
		// Started by hand (`temporal server start-dev`): use it as it is.
		return &devState{Port: port}, false, nil
	}
	db := filepath.Join(dataDir, devDBFile)
	fmt.Fprintf(out, "Starting the Temporal dev server (SQLite: %s) ...\n", db)
	dev, err := temporalx.StartDetachedDevServer(ctx, db, port, ui, filepath.Join(dataDir, devLogFile))
	if err != nil {
		return nil, false, err
	}
	st = &devState{PID: dev.PID(), Port: port, UIPort: dev.UIPort, DB: db, Log: filepath.Join(dataDir, devLogFile), Started: time.Now().UTC()}
	b, _ := json.MarshalIndent(st, "", "  ")
	if err := artifact.WriteFileAtomic(filepath.Join(dataDir, devStateFile), b); err != nil {
		dev.Stop()
		return nil, false, err
	}
	return st, true, nil
}

func printDevState(out io.Writer, st *devState) {
	fmt.Fprintf(out, "Temporal dev server: %s (pid %d)\n", devAddress(st.Port), st.PID)
	if st.UIPort != 0 {
		fmt.Fprintf(out, "Temporal Web UI:     http://127.0.0.1:%d\n", st.UIPort)
	}
	fmt.Fprintf(out, "database:            %s\nlog:                 %s\n", st.DB, st.Log)
}

func newDevCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Start, show or stop the embedded default's Temporal dev server",
		Long: `Dev manages the embedded default's Temporal dev server (the Temporal CLI's
"server start-dev", SQLite under the data folder, Web UI on the port + 1000).
It keeps running in the background until "loraflow dev stop", so status,
runs ls, cancel and the Web UI work after "loraflow run" has exited.
"loraflow run" starts it when it is not running.

Runs need a worker: "loraflow run" brings one in its own process, so a run
left unfinished goes on from its last checkpoint the next time "loraflow run"
is started.`,
	}
	cmd.AddCommand(newDevStartCmd(), newDevStatusCmd(), newDevStopCmd())
	return cmd
}

func newDevStartCmd() *cobra.Command {
	var ui bool
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Start the dev server in the background (a no-op when it runs)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, port, dataDir, err := devSettings(cmd)
			if err != nil {
				return err
			}
			if !cfg.embedded() {
				return fmt.Errorf("dev start: --address / LORAFLOW_TEMPORAL_ADDRESS names a server (%s, from %s); the dev server is for when none is set", cfg.get("address"), cfg.sources["address"])
			}
			out := cmd.OutOrStdout()
			st, started, err := ensureDevServer(cmd.Context(), out, dataDir, port, ui)
			if err != nil {
				return err
			}
			if !started {
				fmt.Fprintln(out, "The dev server is already running.")
			}
			if st.PID != 0 {
				printDevState(out, st)
			}
			return nil
		},
	}
	addSettings(cmd.Flags(), "address", "dev-port")
	cmd.Flags().BoolVar(&ui, "ui", true, "serve the Web UI on the port + 1000")
	return cmd
}

func newDevStatusCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Say whether the dev server runs, and where",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, port, _, err := devStateOf(cmd)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			switch {
			case st != nil:
				printDevState(out, st)
			case temporalx.Reachable(devAddress(port), time.Second):
				fmt.Fprintf(out, "A Temporal server not started by loraflow listens on %s.\n", devAddress(port))
			default:
				fmt.Fprintln(out, "The dev server is not running (`loraflow dev start` starts it; `loraflow run` does too).")
			}
			return nil
		},
	}
	addSettings(cmd.Flags(), "dev-port")
	return cmd
}

func newDevStopCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stop",
		Short: "Stop the dev server loraflow started (runs stay in its database)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, _, dataDir, err := devStateOf(cmd)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if st == nil {
				fmt.Fprintln(out, "The dev server is not running.")
				return nil
			}
			if err := temporalx.StopPID(st.PID, 10*time.Second); err != nil {
				return err
			}
			_ = os.Remove(filepath.Join(dataDir, devStateFile))
			fmt.Fprintf(out, "Stopped the dev server (pid %d); its runs are kept in %s.\n", st.PID, st.DB)
			return nil
		},
	}
	addSettings(cmd.Flags(), "dev-port")
	return cmd
}

func devSettings(cmd *cobra.Command) (*resolved, int, string, error) {
	cfg, err := resolveSettings(cmd)
	if err != nil {
		return nil, 0, "", err
	}
	port, _ := cfg.devPort()
	dataDir, err := temporalx.DataDir()
	return cfg, port, dataDir, err
}

// devStateOf is the running dev server loraflow started (nil if none), the
// resolved dev port and the data folder.
func devStateOf(cmd *cobra.Command) (*devState, int, string, error) {
	_, port, dataDir, err := devSettings(cmd)
	if err != nil {
		return nil, 0, "", err
	}
	st, err := readDevState(dataDir)
	return st, port, dataDir, err
}
