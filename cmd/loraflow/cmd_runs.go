package main

import (
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/loraflow/loraflow/workflows"
)

func init() { register(newRunsCmd) }

func newRunsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "List pipeline runs (status ID and cancel ID act on one)",
	}
	cmd.AddCommand(newRunsLsCmd())
	return cmd
}

func newRunsLsCmd() *cobra.Command {
	var (
		f     connFlags
		limit int
		query string
	)
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List pipeline runs, newest first",
		Example: `  loraflow runs ls
  loraflow runs ls --query "ExecutionStatus = 'Running'"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			c, err := f.dial(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				return err
			}
			defer c.Close()
			// Temporal's list filter (visibility query); the newest first is
			// the server's order.
			q := fmt.Sprintf("WorkflowType = '%s'", workflows.PipelineName)
			if query != "" {
				q += " AND (" + query + ")"
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "WORKFLOW ID\tSTATUS\tSTARTED (UTC)\tDURATION")
			var token []byte
			n := 0
			for n < limit {
				resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
					Namespace: f.conn.Namespace, Query: q, PageSize: int32(min(limit-n, 100)), NextPageToken: token,
				})
				if err != nil {
					return fmt.Errorf("listing runs in namespace %s: %w", f.conn.Namespace, err)
				}
				for _, e := range resp.GetExecutions() {
					if n == limit {
						break
					}
					n++
					start := e.GetStartTime().AsTime()
					dur := "-"
					if ct := e.GetCloseTime(); ct != nil && ct.IsValid() && !ct.AsTime().IsZero() {
						dur = ct.AsTime().Sub(start).Round(100 * time.Millisecond).String()
					} else {
						dur = time.Since(start).Round(time.Second).String() + " so far"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.GetExecution().GetWorkflowId(), statusName(e.GetStatus().String()),
						start.UTC().Format("2006-01-02 15:04:05"), dur)
				}
				token = resp.GetNextPageToken()
				if len(token) == 0 {
					break
				}
			}
			if n == 0 {
				fmt.Fprintf(tw, "(no runs in namespace %s)\n", f.conn.Namespace)
			}
			return tw.Flush()
		},
	}
	f.add(cmd)
	cmd.Flags().IntVar(&limit, "limit", 20, "how many runs to list")
	cmd.Flags().StringVar(&query, "query", "", "extra Temporal list filter, e.g. \"ExecutionStatus = 'Running'\"")
	return cmd
}
