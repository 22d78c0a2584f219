package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/loraflow/loraflow/internal/digestfmt"
	"github.com/loraflow/loraflow/registry"
)

func init() { register(newRegistryCmd) }

// registryFlags are shared by the registry subcommands.
type registryFlags struct {
	uri    string
	asJSON bool
}

func newRegistryCmd() *cobra.Command {
	f := &registryFlags{}
	cmd := &cobra.Command{
		Use:   "registry",
		Short: "List, inspect, promote and roll back published adapter versions",
		Long: `Work with the model registry that the pipeline publishes to: the embedded
local registry (file://PATH, the default) or an MLflow tracking server
(http(s)://HOST[:PORT], credentials from MLFLOW_TRACKING_TOKEN,
LORAFLOW_MLFLOW_TOKEN_FILE or MLFLOW_TRACKING_USERNAME/PASSWORD).

The alias "champion" names the serving version; promote moves it and
remembers the replaced one as "previous-champion", which rollback restores.`,
	}
	addSettings(cmd.PersistentFlags(), "registry")
	cmd.PersistentFlags().BoolVar(&f.asJSON, "json", false, "print JSON")
	cmd.AddCommand(newRegistryLsCmd(f), newRegistryShowCmd(f), newRegistryPromoteCmd(f), newRegistryRollbackCmd(f))
	return cmd
}

func (f *registryFlags) open(cmd *cobra.Command) (registry.Registry, error) {
	cfg, err := resolveSettings(cmd)
	if err != nil {
		return nil, err
	}
	f.uri = cfg.get("registry") // empty: registry.DefaultURI
	return registry.Open(cmd.Context(), f.uri)
}

func registryWriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newRegistryLsCmd(f *registryFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "ls [MODEL]",
		Short: "List registered models, or the versions of one model",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			reg, err := f.open(cmd)
			if err != nil {
				return err
			}
			defer reg.Close()
			ctx, out := cmd.Context(), cmd.OutOrStdout()
			if len(args) == 0 {
				models, err := reg.ListModels(ctx)
				if err != nil {
					return err
				}
				type row struct {
					Model    string `json:"model"`
					Versions int    `json:"versions"`
					Champion string `json:"champion,omitempty"`
					Latest   string `json:"latest,omitempty"`
				}
				rows := make([]row, 0, len(models))
				for _, m := range models {
					vs, err := reg.ListVersions(ctx, m)
					if err != nil {
						return err
					}
					r := row{Model: m, Versions: len(vs)}
					for _, v := range vs {
						if v.HasAlias(registry.AliasChampion) {
							r.Champion = v.Version
						}
					}
					if len(vs) > 0 {
						r.Latest = vs[len(vs)-1].Version
					}
					rows = append(rows, r)
				}
				if f.asJSON {
					return registryWriteJSON(out, rows)
				}
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "MODEL\tVERSIONS\tCHAMPION\tLATEST")
				for _, r := range rows {
					fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", r.Model, r.Versions, registryDash(r.Champion), registryDash(r.Latest))
				}
				return tw.Flush()
			}
			vs, err := reg.ListVersions(ctx, args[0])
			if err != nil {
				return err
			}
			if f.asJSON {
				return registryWriteJSON(out, vs)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tALIASES\tDIGEST\tCREATED\tMETRICS")
			for _, v := range vs {
				created := "-"
				if !v.CreatedAt.IsZero() {
					created = v.CreatedAt.Format("2006-01-02 15:04")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", v.Version, registryDash(strings.Join(v.Aliases, ",")), digestfmt.Short(v.ArtifactDigest), created, registryMetricsLine(v.Metrics))
			}
			return tw.Flush()
		},
	}
}

func newRegistryShowCmd(f *registryFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "show MODEL VERSION|@ALIAS",
		Short: "Show one version: digest, aliases, tags, metrics, artifacts",
		Example: `  loraflow registry show tiny-lora 3
  loraflow registry show tiny-lora @champion`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			reg, err := f.open(cmd)
			if err != nil {
				return err
			}
			defer reg.Close()
			ctx := cmd.Context()
			var v registry.Version
			if alias, ok := strings.CutPrefix(args[1], "@"); ok {
				var found bool
				v, found, err = reg.GetByAlias(ctx, args[0], alias)
				if err == nil && !found {
					err = fmt.Errorf("model %q has no alias %q", args[0], alias)
				}
			} else {
				v, err = reg.GetVersion(ctx, args[0], args[1])
			}
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.asJSON {
				return registryWriteJSON(out, v)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "model:\t%s\n", v.Model)
			fmt.Fprintf(tw, "version:\t%s\n", v.Version)
			fmt.Fprintf(tw, "aliases:\t%s\n", registryDash(strings.Join(v.Aliases, ", ")))
			fmt.Fprintf(tw, "digest:\t%s\n", v.ArtifactDigest)
			if v.Status != "" {
				fmt.Fprintf(tw, "status:\t%s\n", v.Status)
			}
			if !v.CreatedAt.IsZero() {
				fmt.Fprintf(tw, "created:\t%s\n", v.CreatedAt.Format("2006-01-02 15:04:05 MST"))
			}
			if v.Description != "" {
				fmt.Fprintf(tw, "description:\t%s\n", v.Description)
			}
			fmt.Fprintf(tw, "source:\t%s\n", v.Source)
			if v.RunID != "" {
				fmt.Fprintf(tw, "run:\t%s\n", v.RunID)
			}
			for _, k := range slices.Sorted(maps.Keys(v.Artifacts)) {
				fmt.Fprintf(tw, "artifact %s:\t%s\n", k, v.Artifacts[k])
			}
			for _, k := range slices.Sorted(maps.Keys(v.Metrics)) {
				fmt.Fprintf(tw, "metric %s:\t%s\n", k, strconv.FormatFloat(v.Metrics[k], 'g', 6, 64))
			}
			for _, k := range slices.Sorted(maps.Keys(v.Tags)) {
				if strings.HasPrefix(k, registry.TagMetricPrefix) {
					continue
				}
				fmt.Fprintf(tw, "tag %s:\t%s\n", k, v.Tags[k])
			}
			return tw.Flush()
		},
	}
}

func newRegistryPromoteCmd(f *registryFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "promote MODEL VERSION",
		Short: "Make VERSION the champion (the replaced champion becomes previous-champion)",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			reg, err := f.open(cmd)
			if err != nil {
				return err
			}
			defer reg.Close()
			res, err := reg.Promote(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			return registryPrintPromote(cmd.OutOrStdout(), f.asJSON, res, "promoted")
		},
	}
}

func newRegistryRollbackCmd(f *registryFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "rollback MODEL",
		Short: "Make the previous champion the champion again",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			reg, err := f.open(cmd)
			if err != nil {
				return err
			}
			defer reg.Close()
			res, err := reg.Rollback(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return registryPrintPromote(cmd.OutOrStdout(), f.asJSON, res, "rolled back")
		},
	}
}

func registryPrintPromote(w io.Writer, asJSON bool, res registry.PromoteResult, verb string) error {
	if asJSON {
		return registryWriteJSON(w, res)
	}
	switch {
	case !res.Changed:
		_, err := fmt.Fprintf(w, "%s: version %s is already the champion\n", res.Model, res.Champion)
		return err
	case res.Previous != "":
		_, err := fmt.Fprintf(w, "%s %s: champion is now version %s (was %s)\n", verb, res.Model, res.Champion, res.Previous)
		return err
	default:
		_, err := fmt.Fprintf(w, "%s %s: champion is now version %s\n", verb, res.Model, res.Champion)
		return err
	}
}

func registryDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func registryMetricsLine(m map[string]float64) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+strconv.FormatFloat(m[k], 'g', 4, 64))
	}
	return registryDash(strings.Join(parts, " "))
}
