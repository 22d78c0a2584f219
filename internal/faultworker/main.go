// Command faultworker is a loraflow worker for the fault suite
// (faults_test.go): the plugin exactly as cmd/worker runs it, plus a worker
// interceptor that kills its own process with SIGKILL at one chosen point,
// so that a crash lands at a known place in the pipeline:
//
//	--kill-at Activity:before      when the activity starts
//	--kill-at Activity:after       when it has returned, before Temporal hears of it
//	                               (its side effects are done, its result is lost)
//	--kill-at TrainLoRA:step=N     at the first training heartbeat of step N or later
//	                               (between two steps)
//	--kill-at TrainLoRA:random     1 to 10 steps after the first heartbeat it sees,
//	                               0–30 ms into the next step (during a step, or the
//	                               checkpoint write that follows it)
//
// It is a test tool, not part of the product: cmd/worker has no such hook.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"

	"github.com/loraflow/loraflow"
	"github.com/loraflow/loraflow/activities"
)

func main() {
	address := flag.String("address", "127.0.0.1:7233", "Temporal frontend")
	queue := flag.String("task-queue", "loraflow", "task queue")
	root := flag.String("artifact-root", "", "artifact store root")
	input := flag.String("input-root", "", "input root")
	key := flag.String("signing-key", "", "NAME=PATH of the signing key")
	killAt := flag.String("kill-at", "", "Activity:before|after|step=N (empty: never)")
	flag.Parse()
	kp, err := parsePoint(*killAt)
	if err != nil {
		fail(err)
	}
	name, path, _ := strings.Cut(*key, "=")
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	plugin, err := loraflow.Plugin(loraflow.Config{ArtifactRoot: *root, InputRoots: []string{*input},
		SigningKeys: map[string]string{name: path}, Logger: logger})
	if err != nil {
		fail(err)
	}
	c, err := client.Dial(client.Options{HostPort: *address, Logger: logger})
	if err != nil {
		fail(err)
	}
	defer c.Close()
	opts := worker.Options{Plugins: []worker.Plugin{plugin}}
	if kp.activity != "" {
		opts.Interceptors = []interceptor.WorkerInterceptor{&killer{p: kp}}
	}
	w := worker.New(c, *queue, opts)
	if err := w.Run(worker.InterruptCh()); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "faultworker:", err)
	os.Exit(1)
}

type point struct {
	activity string
	when     string // "before", "after" or "step"
	step     int
}

func parsePoint(s string) (point, error) {
	if s == "" {
		return point{}, nil
	}
	a, w, ok := strings.Cut(s, ":")
	if !ok || a == "" {
		return point{}, fmt.Errorf("--kill-at %q: want Activity:before|after|step=N", s)
	}
	if n, isStep := strings.CutPrefix(w, "step="); isStep {
		step, err := strconv.Atoi(n)
		if err != nil {
			return point{}, fmt.Errorf("--kill-at %q: %w", s, err)
		}
		return point{activity: a, when: "step", step: step}, nil
	}
	if w != "before" && w != "after" && w != "random" {
		return point{}, fmt.Errorf("--kill-at %q: want before, after, random or step=N", s)
	}
	return point{activity: a, when: w}, nil
}

// die is kill -9 of this process: no deferred call, no SDK shutdown, no
// flushing; exactly what the kernel does to a worker killed by the OOM
// killer or a node failure.
func die(p point) {
	fmt.Fprintf(os.Stderr, "faultworker: SIGKILL at %s:%s\n", p.activity, p.when)
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

type killer struct {
	interceptor.WorkerInterceptorBase
	p point
}

func (k *killer) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	in := &killIn{p: k.p}
	in.Next = next
	return in
}

type killIn struct {
	interceptor.ActivityInboundInterceptorBase
	p point
}

func (i *killIn) Init(outbound interceptor.ActivityOutboundInterceptor) error {
	out := &killOut{p: i.p}
	out.Next = outbound
	return i.Next.Init(out)
}

func (i *killIn) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	hit := activity.GetInfo(ctx).ActivityType.Name == i.p.activity
	if hit && i.p.when == "before" {
		die(i.p)
	}
	res, err := i.Next.ExecuteActivity(ctx, in)
	if hit && i.p.when == "after" {
		die(i.p)
	}
	return res, err
}

type killOut struct {
	interceptor.ActivityOutboundInterceptorBase
	p point
}

// randomTarget is the step after which a "random" point kills (0: not
// chosen yet); it is chosen at the first heartbeat and kept for the process.
var (
	randomTarget atomic.Int64
	fired        atomic.Bool
)

func (o *killOut) RecordHeartbeat(ctx context.Context, details ...any) {
	o.Next.RecordHeartbeat(ctx, details...)
	if (o.p.when != "step" && o.p.when != "random") || activity.GetInfo(ctx).ActivityType.Name != o.p.activity || len(details) == 0 {
		return
	}
	var step int
	switch d := details[0].(type) {
	case activities.TrainProgress:
		step = d.Step
	case *activities.TrainProgress:
		step = d.Step
	}
	switch {
	case o.p.when == "step" && step >= o.p.step:
		die(o.p)
	case o.p.when == "random":
		randomTarget.CompareAndSwap(0, int64(step+1+rand.IntN(10)))
		if int64(step) >= randomTarget.Load() && fired.CompareAndSwap(false, true) { // heartbeats may skip steps
			go func() {
				time.Sleep(time.Duration(rand.IntN(30)) * time.Millisecond)
				die(o.p)
			}()
		}
	}
}
