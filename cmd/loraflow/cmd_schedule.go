package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/loraflow/loraflow/spec"
	"github.com/loraflow/loraflow/workflows"
)

func init() { register(newScheduleCmd) }

// Memo keys a loraflow schedule carries, so that list and describe can show
// the schedule as it was written (the server rewrites cron expressions into
// calendar specs). They sit on the schedule and on its workflow action: an
// update can replace only the latter, which also lands on every run.
const (
	memoSpecFile = "loraflow.spec_file"
	memoModel    = "loraflow.model"
	memoCron     = "loraflow.cron"
	memoEvery    = "loraflow.every"
)

func newScheduleCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schedule",
		Short: "Retrain on a Temporal Schedule (cron or interval)",
		Long: `Schedule manages retraining on Temporal Schedules. Each scheduled action
starts the LoRAPipeline workflow with the spec loaded at creation time and
skip_if_unchanged set, so a run whose dataset snapshot and base model equal the
registry champion's ends early as "unchanged" and publishes nothing. A run is
never started while the previous one is still going (overlap policy SKIP).

Workers must be running on the schedule's task queue (loraflow worker, or the
Helm chart's Deployment).`,
	}
	cmd.AddCommand(newScheduleCreateCmd(), newScheduleListCmd(), newScheduleDescribeCmd(),
		newSchedulePauseCmd(), newScheduleUnpauseCmd(), newScheduleTriggerCmd(), newScheduleDeleteCmd())
	return cmd
}

// scheduleCreateOptions are the create command's settings.
type scheduleCreateOptions struct {
	specFile       string
	id             string
	cron           []string
	every          time.Duration
	catchupWindow  time.Duration
	pauseOnFailure bool
	note           string
	update         bool // replace an existing schedule's spec, action and policies
}

// validate checks the arguments before anything is dialled.
func (o scheduleCreateOptions) validate() error {
	switch {
	case o.id == "":
		return errors.New("schedule create: --id is required")
	case o.specFile == "":
		return errors.New("schedule create: --spec is required")
	case len(o.cron) == 0 && o.every == 0:
		return errors.New("schedule create: say when to run: --cron EXPR (repeatable) or --every DURATION")
	case len(o.cron) > 0 && o.every != 0:
		return errors.New("schedule create: --cron and --every exclude each other")
	case o.every < 0:
		return fmt.Errorf("schedule create: --every %s is negative", o.every)
	case o.every > 0 && o.every < time.Second:
		return fmt.Errorf("schedule create: --every %s is below Temporal's one-second resolution", o.every)
	case o.catchupWindow < 0:
		return fmt.Errorf("schedule create: --catchup-window %s is negative", o.catchupWindow)
	case o.catchupWindow > 0 && o.catchupWindow < 10*time.Second:
		return fmt.Errorf("schedule create: --catchup-window %s is below Temporal's minimum of 10s", o.catchupWindow)
	}
	for _, c := range o.cron {
		if strings.TrimSpace(c) == "" {
			return errors.New("schedule create: --cron expression is empty")
		}
	}
	return nil
}

// scheduleOverlap is the only overlap policy loraflow schedules use: a
// retraining run never starts while the previous one is going.
const scheduleOverlap = enums.SCHEDULE_OVERLAP_POLICY_SKIP

// scheduleOptions builds the Temporal schedule for a loaded spec.
func (o scheduleCreateOptions) scheduleOptions(s spec.Spec, taskQueue string) client.ScheduleOptions {
	s.SkipIfUnchanged = true
	memo := map[string]any{memoSpecFile: o.specFile, memoModel: s.Name}
	sched := client.ScheduleSpec{}
	if len(o.cron) > 0 {
		sched.CronExpressions = append([]string(nil), o.cron...)
		memo[memoCron] = sched.CronExpressions
	} else {
		sched.Intervals = []client.ScheduleIntervalSpec{{Every: o.every}}
		memo[memoEvery] = o.every.String()
	}
	return client.ScheduleOptions{
		ID:   o.id,
		Spec: sched,
		Action: &client.ScheduleWorkflowAction{
			// The server appends the scheduled time: ID-2026-11-28T03:00:00Z.
			ID:        o.id,
			Workflow:  workflows.PipelineName,
			Args:      []any{s},
			TaskQueue: taskQueue,
			Memo:      memo,
		},
		Overlap:        scheduleOverlap,
		CatchupWindow:  o.catchupWindow,
		PauseOnFailure: o.pauseOnFailure,
		Note:           o.note,
		Memo:           memo,
	}
}

func newScheduleCreateCmd() *cobra.Command {
	var (
		f connFlags
		o scheduleCreateOptions
	)
	cmd := &cobra.Command{
		Use:   "create --spec FILE --id ID (--cron EXPR... | --every DURATION)",
		Short: "Create a retraining schedule for a spec",
		Long: `Create registers a Temporal Schedule that starts the LoRA pipeline for the
spec on a cron calendar or at a fixed interval. The spec is read and validated
now; its dataset files are read again by each run, so new data is picked up and
unchanged data publishes nothing.

Cron expressions have 5 to 7 fields (Temporal's syntax: [second] minute hour
day-of-month month day-of-week [year]) or a shorthand like @daily, and are
evaluated in UTC unless prefixed with CRON_TZ=Zone.`,
		Example: `  loraflow schedule create --spec spec.yaml --id nightly --cron "0 3 * * *"
  loraflow schedule create --spec spec.yaml --id hourly --every 1h --catchup-window 30m`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			s, err := spec.Load(o.specFile)
			if err != nil {
				return err
			}
			if abs, err := filepath.Abs(o.specFile); err == nil {
				o.specFile = abs
			}
			ctx := cmd.Context()
			c, err := dialSchedules(ctx, &f)
			if err != nil {
				return err
			}
			defer c.Close()
			so := o.scheduleOptions(*s, f.taskQueue)
			verb, doing := "created", "creating"
			h, err := c.ScheduleClient().Create(ctx, so)
			if errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
				if !o.update {
					return fmt.Errorf("schedule %q already exists in namespace %s (--update replaces it; or delete it first, or pick another --id)", o.id, f.conn.Namespace)
				}
				h, verb, doing = c.ScheduleClient().GetHandle(ctx, o.id), "updated", "updating"
				err = h.Update(ctx, client.ScheduleUpdateOptions{DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
					return updatedSchedule(in.Description.Schedule, so), nil
				}})
			}
			if err != nil {
				return fmt.Errorf("%s schedule %q: %w", doing, o.id, err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "schedule %s %s: pipeline %s on task queue %s, overlap SKIP, unchanged data publishes nothing\n", h.GetID(), verb, s.Name, f.taskQueue)
			if d, err := h.Describe(ctx); err == nil && len(d.Info.NextActionTimes) > 0 {
				fmt.Fprintf(out, "next run: %s\n", d.Info.NextActionTimes[0].UTC().Format(time.RFC3339))
			}
			return nil
		},
	}
	f.add(cmd)
	fl := cmd.Flags()
	fl.StringVar(&o.specFile, "spec", "", "pipeline spec (YAML)")
	fl.StringVar(&o.id, "id", "", "schedule ID; also the prefix of the workflow IDs it starts")
	fl.StringArrayVar(&o.cron, "cron", nil, "cron expression (repeatable), e.g. \"0 3 * * *\"")
	fl.DurationVar(&o.every, "every", 0, "run at this interval instead of a cron calendar, e.g. 6h")
	fl.DurationVar(&o.catchupWindow, "catchup-window", 0, "how late a run missed during a server outage may still start (0: the server's default, one year)")
	fl.BoolVar(&o.pauseOnFailure, "pause-on-failure", true, "pause the schedule when a run fails")
	fl.StringVar(&o.note, "note", "", "a note shown with the schedule")
	fl.BoolVar(&o.update, "update", false, "when the schedule exists, replace its spec, timing and policies (paused state kept); for deploy jobs")
	return cmd
}

// updatedSchedule is the existing schedule with create's spec, action and
// policies; whether it is paused is kept, its note replaced when one is given.
func updatedSchedule(cur client.Schedule, so client.ScheduleOptions) *client.ScheduleUpdate {
	state := client.ScheduleState{}
	if cur.State != nil {
		state = *cur.State
	}
	if so.Note != "" {
		state.Note = so.Note
	}
	when := so.Spec
	return &client.ScheduleUpdate{Schedule: &client.Schedule{
		Action: so.Action,
		Spec:   &when,
		Policy: &client.SchedulePolicies{Overlap: so.Overlap, CatchupWindow: so.CatchupWindow, PauseOnFailure: so.PauseOnFailure},
		State:  &state,
	}}
}

func newScheduleListCmd() *cobra.Command {
	var f connFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the schedules of the namespace",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			c, err := dialSchedules(ctx, &f)
			if err != nil {
				return err
			}
			defer c.Close()
			it, err := c.ScheduleClient().List(ctx, client.ScheduleListOptions{})
			if err != nil {
				return fmt.Errorf("listing schedules: %w", err)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATE\tWHEN\tWORKFLOW\tNEXT RUN\tLAST RUN")
			for it.HasNext() {
				e, err := it.Next()
				if err != nil {
					return fmt.Errorf("listing schedules: %w", err)
				}
				state := "active"
				if e.Paused {
					state = "paused"
				}
				next, last := "-", "-"
				if len(e.NextActionTimes) > 0 {
					next = e.NextActionTimes[0].UTC().Format(time.RFC3339)
				}
				if n := len(e.RecentActions); n > 0 {
					last = e.RecentActions[n-1].ActualTime.UTC().Format(time.RFC3339)
				}
				memo := newScheduleMemo(e.Memo, nil)
				if e.WorkflowType.Name == workflows.PipelineName {
					// The action's memo is current after an update; the list entry lacks it.
					if d, err := c.ScheduleClient().GetHandle(ctx, e.ID).Describe(ctx); err == nil {
						memo = describedScheduleMemo(d)
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, state, strings.Join(scheduleWhen(memo, e.Spec), "; "), e.WorkflowType.Name, next, last)
			}
			return tw.Flush()
		},
	}
	f.add(cmd)
	return cmd
}

func newScheduleDescribeCmd() *cobra.Command {
	var f connFlags
	cmd := &cobra.Command{
		Use:   "describe ID",
		Short: "Show a schedule: when it runs, its policies, next runs and recent runs with their outcome",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := dialSchedules(ctx, &f)
			if err != nil {
				return err
			}
			defer c.Close()
			d, err := c.ScheduleClient().GetHandle(ctx, args[0]).Describe(ctx)
			if err != nil {
				return scheduleError(args[0], f.conn.Namespace, "describing", err)
			}
			return printSchedule(ctx, cmd.OutOrStdout(), c, args[0], d)
		},
	}
	f.add(cmd)
	return cmd
}

func newSchedulePauseCmd() *cobra.Command {
	var (
		f    connFlags
		note string
	)
	cmd := &cobra.Command{
		Use:   "pause ID",
		Short: "Pause a schedule (no new runs; a running one goes on)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withSchedule(cmd, &f, args[0], "pausing", func(ctx context.Context, h client.ScheduleHandle) error {
				if err := h.Pause(ctx, client.SchedulePauseOptions{Note: note}); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "schedule %s paused\n", args[0])
				return nil
			})
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&note, "note", "paused with loraflow", "why it is paused (shown by describe)")
	return cmd
}

func newScheduleUnpauseCmd() *cobra.Command {
	var (
		f    connFlags
		note string
	)
	cmd := &cobra.Command{
		Use:   "unpause ID",
		Short: "Resume a paused schedule",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withSchedule(cmd, &f, args[0], "unpausing", func(ctx context.Context, h client.ScheduleHandle) error {
				if err := h.Unpause(ctx, client.ScheduleUnpauseOptions{Note: note}); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "schedule %s resumed\n", args[0])
				return nil
			})
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&note, "note", "unpaused with loraflow", "note shown by describe")
	return cmd
}

func newScheduleTriggerCmd() *cobra.Command {
	var (
		f    connFlags
		wait time.Duration
	)
	cmd := &cobra.Command{
		Use:   "trigger ID",
		Short: "Start a run now, unless the previous run is still going (overlap SKIP)",
		Long: `Trigger asks the schedule to take its action now, under the schedule's own
overlap policy: a run still going means no new run. It then waits (--wait) for
the schedule to report the run it started, or that it skipped, and prints the
run's workflow ID (follow it with loraflow status ID).`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withSchedule(cmd, &f, args[0], "triggering", func(ctx context.Context, h client.ScheduleHandle) error {
				return triggerSchedule(ctx, cmd.OutOrStdout(), h, wait)
			})
		},
	}
	f.add(cmd)
	cmd.Flags().DurationVar(&wait, "wait", 15*time.Second, "how long to wait for the schedule to report the run (0: do not wait)")
	return cmd
}

func newScheduleDeleteCmd() *cobra.Command {
	var f connFlags
	cmd := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a schedule (runs it started are not affected)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withSchedule(cmd, &f, args[0], "deleting", func(ctx context.Context, h client.ScheduleHandle) error {
				if err := h.Delete(ctx); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "schedule %s deleted\n", args[0])
				return nil
			})
		},
	}
	f.add(cmd)
	return cmd
}

// withSchedule dials Temporal and runs op on the schedule's handle, turning
// the server's errors into ones that name the schedule.
func withSchedule(cmd *cobra.Command, f *connFlags, id, verb string, op func(context.Context, client.ScheduleHandle) error) error {
	ctx := cmd.Context()
	c, err := dialSchedules(ctx, f)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := op(ctx, c.ScheduleClient().GetHandle(ctx, id)); err != nil {
		return scheduleError(id, f.conn.Namespace, verb, err)
	}
	return nil
}

// dialSchedules connects to Temporal, naming the address when it cannot.
func dialSchedules(ctx context.Context, f *connFlags) (client.Client, error) {
	c, err := f.dial(ctx, scheduleLogger())
	if err != nil {
		return nil, fmt.Errorf("reaching Temporal at %s (namespace %s): %w", f.conn.Address, f.conn.Namespace, err)
	}
	return c, nil
}

func scheduleError(id, namespace, verb string, err error) error {
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return fmt.Errorf("schedule %q not found in namespace %s (loraflow schedule list shows the schedules there)", id, namespace)
	}
	return fmt.Errorf("%s schedule %q: %w", verb, id, err)
}

// triggerSchedule triggers the schedule under its own overlap policy and
// waits for it to report the started run, or the skip.
func triggerSchedule(ctx context.Context, out io.Writer, h client.ScheduleHandle, wait time.Duration) error {
	before, err := h.Describe(ctx)
	if err != nil {
		return err
	}
	if err := h.Trigger(ctx, client.ScheduleTriggerOptions{}); err != nil {
		return err
	}
	if wait <= 0 {
		fmt.Fprintf(out, "schedule %s triggered\n", h.GetID())
		return nil
	}
	deadline := time.Now().Add(wait)
	for {
		d, err := h.Describe(ctx)
		if err != nil {
			return err
		}
		if d.Info.NumActions > before.Info.NumActions && len(d.Info.RecentActions) > 0 {
			last := d.Info.RecentActions[len(d.Info.RecentActions)-1]
			if r := last.StartWorkflowResult; r != nil {
				fmt.Fprintf(out, "schedule %s triggered: started workflow %s (run %s)\n", h.GetID(), r.WorkflowID, r.FirstExecutionRunID)
				return nil
			}
		}
		if d.Info.NumActionsSkippedOverlap > before.Info.NumActionsSkippedOverlap {
			running := make([]string, 0, len(d.Info.RunningWorkflows))
			for _, r := range d.Info.RunningWorkflows {
				running = append(running, r.WorkflowID)
			}
			fmt.Fprintf(out, "schedule %s triggered: skipped, the previous run is still going (overlap SKIP): %s\n", h.GetID(), strings.Join(running, ", "))
			return nil
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(out, "schedule %s triggered; no run reported within %s (loraflow schedule describe %s)\n", h.GetID(), wait, h.GetID())
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// printSchedule writes describe's report.
func printSchedule(ctx context.Context, out io.Writer, c client.Client, id string, d *client.ScheduleDescription) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s:\t%s\n", k, fmt.Sprintf(format, a...)) }
	row("schedule", "%s", id)
	if act, ok := d.Schedule.Action.(*client.ScheduleWorkflowAction); ok {
		row("workflow", "%s on task queue %s (workflow IDs %s-<time>)", scheduleWorkflowType(act.Workflow), act.TaskQueue, act.ID)
		if s, ok := actionSpec(act); ok {
			row("model", "%s (base %s, skip_if_unchanged %t)", s.Name, s.BaseModel, s.SkipIfUnchanged)
		}
	}
	memo := describedScheduleMemo(d)
	if file := memo.string(memoSpecFile); file != "" {
		row("spec file", "%s", file)
	}
	for _, w := range scheduleWhen(memo, d.Schedule.Spec) {
		k, v, _ := strings.Cut(w, " ")
		row(k, "%s", v)
	}
	if p := d.Schedule.Policy; p != nil {
		row("overlap", "%s", overlapName(p.Overlap))
		row("catch-up window", "%s", p.CatchupWindow)
		row("pause on failure", "%t", p.PauseOnFailure)
	}
	if st := d.Schedule.State; st != nil {
		state := "active"
		if st.Paused {
			state = "paused"
		}
		row("state", "%s", state)
		if st.Note != "" {
			row("note", "%s", st.Note)
		}
	}
	row("actions", "%d taken, %d skipped (overlap), %d missed the catch-up window",
		d.Info.NumActions, d.Info.NumActionsSkippedOverlap, d.Info.NumActionsMissedCatchupWindow)
	for _, r := range d.Info.RunningWorkflows {
		row("running", "%s", r.WorkflowID)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(d.Info.NextActionTimes) > 0 {
		fmt.Fprintln(out, "next runs:")
		for i, t := range d.Info.NextActionTimes {
			if i == 5 {
				break
			}
			fmt.Fprintf(out, "  %s\n", t.UTC().Format(time.RFC3339))
		}
	}
	if len(d.Info.RecentActions) > 0 {
		fmt.Fprintln(out, "recent runs:")
		tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		for _, a := range d.Info.RecentActions {
			wid, outcome := "-", "-"
			if r := a.StartWorkflowResult; r != nil {
				wid, outcome = r.WorkflowID, scheduleRunOutcome(ctx, c, r.WorkflowID, r.FirstExecutionRunID)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", a.ActualTime.UTC().Format(time.RFC3339), wid, outcome)
		}
		return tw.Flush()
	}
	return nil
}

// scheduleRunOutcome is a run's Temporal status, and for a completed pipeline its
// result ("published version 3", "unchanged", "rejected: ...").
func scheduleRunOutcome(ctx context.Context, c client.Client, workflowID, runID string) string {
	desc, err := c.DescribeWorkflowExecution(ctx, workflowID, runID)
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	status := desc.GetWorkflowExecutionInfo().GetStatus()
	name := strings.ToLower(strings.TrimPrefix(enums.WorkflowExecutionStatus_name[int32(status)], "WORKFLOW_EXECUTION_STATUS_"))
	if status != enums.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		return name
	}
	var res workflows.Result
	if err := c.GetWorkflow(ctx, workflowID, runID).Get(ctx, &res); err != nil {
		return name
	}
	switch {
	case res.Status == workflows.StatusPublished && res.Publication != nil:
		return fmt.Sprintf("%s: published %s version %s", name, res.Publication.Model, res.Publication.Version)
	case res.Reason != "":
		return fmt.Sprintf("%s: %s (%s)", name, res.Status, res.Reason)
	default:
		return fmt.Sprintf("%s: %s", name, res.Status)
	}
}

// scheduleWhen says when a schedule runs, as "cron EXPR" / "every D" lines:
// from the memo loraflow wrote, else from the server's spec.
func scheduleWhen(memo scheduleMemo, s *client.ScheduleSpec) []string {
	var lines []string
	var crons []string
	if memo.decode(memoCron, &crons) {
		for _, c := range crons {
			lines = append(lines, "cron "+c)
		}
	}
	if every := memo.string(memoEvery); every != "" {
		lines = append(lines, "every "+every)
	}
	if len(lines) > 0 || s == nil {
		return lines
	}
	for _, c := range s.CronExpressions {
		lines = append(lines, "cron "+c)
	}
	for _, iv := range s.Intervals {
		l := "every " + iv.Every.String()
		if iv.Offset != 0 {
			l += " offset " + iv.Offset.String()
		}
		lines = append(lines, l)
	}
	for _, cal := range s.Calendars {
		lines = append(lines, "calendar "+scheduleCalendarString(cal))
	}
	return lines
}

// scheduleCalendarString writes a calendar spec in cron field order.
func scheduleCalendarString(c client.ScheduleCalendarSpec) string {
	fields := []struct {
		name string
		r    []client.ScheduleRange
	}{{"sec", c.Second}, {"min", c.Minute}, {"hour", c.Hour}, {"dom", c.DayOfMonth}, {"month", c.Month}, {"dow", c.DayOfWeek}, {"year", c.Year}}
	parts := make([]string, 0, len(fields))
	for _, f := range fields {
		if len(f.r) == 0 {
			continue
		}
		rs := make([]string, len(f.r))
		for i, r := range f.r {
			rs[i] = strconv.Itoa(r.Start)
			if r.End > r.Start {
				rs[i] += "-" + strconv.Itoa(r.End)
			}
			if r.Step > 1 {
				rs[i] += "/" + strconv.Itoa(r.Step)
			}
		}
		parts = append(parts, f.name+"="+strings.Join(rs, ","))
	}
	return strings.Join(parts, " ")
}

func overlapName(p enums.ScheduleOverlapPolicy) string {
	return strings.TrimPrefix(enums.ScheduleOverlapPolicy_name[int32(p)], "SCHEDULE_OVERLAP_POLICY_")
}

func scheduleWorkflowType(w any) string {
	if s, ok := w.(string); ok {
		return s
	}
	return fmt.Sprintf("%T", w)
}

// actionSpec decodes the pipeline spec a schedule's action starts with.
func actionSpec(act *client.ScheduleWorkflowAction) (spec.Spec, bool) {
	var s spec.Spec
	if len(act.Args) == 0 {
		return s, false
	}
	p, ok := act.Args[0].(*commonpb.Payload)
	if !ok {
		return s, false
	}
	return s, converter.GetDefaultDataConverter().FromPayload(p, &s) == nil
}

// scheduleMemo is a schedule's memo fields, decoded on demand.
type scheduleMemo map[string]*commonpb.Payload

// newScheduleMemo is the action's memo when it carries loraflow's fields
// (an update replaces them there), else the schedule's.
func newScheduleMemo(schedule *commonpb.Memo, action map[string]any) scheduleMemo {
	m := scheduleMemo{}
	for k, v := range action {
		if p, ok := v.(*commonpb.Payload); ok {
			m[k] = p
		}
	}
	if _, ok := m[memoModel]; ok {
		return m
	}
	return scheduleMemo(schedule.GetFields())
}

func describedScheduleMemo(d *client.ScheduleDescription) scheduleMemo {
	var action map[string]any
	if act, ok := d.Schedule.Action.(*client.ScheduleWorkflowAction); ok {
		action = act.Memo
	}
	return newScheduleMemo(d.Memo, action)
}

func (m scheduleMemo) decode(key string, v any) bool {
	p, ok := m[key]
	return ok && converter.GetDefaultDataConverter().FromPayload(p, v) == nil
}

func (m scheduleMemo) string(key string) string {
	var s string
	m.decode(key, &s)
	return s
}

func scheduleLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
