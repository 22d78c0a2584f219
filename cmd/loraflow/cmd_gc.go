package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/loraflow/loraflow/artifact"
	"github.com/loraflow/loraflow/internal/temporalx"
)

func init() { register(newGCCmd) }

func newGCCmd() *cobra.Command {
	var (
		root      string
		olderThan time.Duration
		dryRun    bool
	)
	cmd := &cobra.Command{
		Use:   "gc [--artifact-root DIR] [--older-than 168h] [--dry-run]",
		Short: "Remove old training work folders and unreferenced artifacts",
		Long: `Gc removes, from an artifact store, the work folders (training checkpoints)
that no running attempt holds and that have not changed for --older-than, then
the objects older than that which no index entry and no remaining work folder
names. Running pipelines carry object digests in their workflow histories, so
--older-than must exceed the longest run (the training timeout three times,
plus the other steps). Published versions are copies in the registry and are
not affected.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if root == "" {
				d, err := temporalx.DataDir()
				if err != nil {
					return err
				}
				root = filepath.Join(d, "artifacts")
			}
			if _, err := os.Stat(root); err != nil {
				return fmt.Errorf("artifact store: %w", err)
			}
			s, err := artifact.Open(root)
			if err != nil {
				return err
			}
			rep, err := s.GC(cmd.Context(), artifact.GCOptions{OlderThan: olderThan, DryRun: dryRun})
			verb := "removed"
			if dryRun {
				verb = "would remove"
			}
			w := cmd.OutOrStdout()
			for _, d := range rep.WorkDirs {
				fmt.Fprintf(w, "%s work folder %s\n", verb, d)
			}
			for _, d := range rep.Objects {
				fmt.Fprintf(w, "%s object %s\n", verb, filepath.Base(d))
			}
			fmt.Fprintf(w, "%s %d work folders and %d objects, %.1f MB\n", verb, len(rep.WorkDirs), len(rep.Objects), float64(rep.Bytes)/1e6)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&root, "artifact-root", os.Getenv("LORAFLOW_ARTIFACT_ROOT"), "artifact store (default ~/.local/share/loraflow/artifacts)")
	f.DurationVar(&olderThan, "older-than", 7*24*time.Hour, "keep what changed more recently than this")
	f.BoolVar(&dryRun, "dry-run", false, "list what would be removed, remove nothing")
	return cmd
}
