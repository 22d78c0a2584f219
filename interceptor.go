package loraflow

import (
	"context"

	"go.temporal.io/sdk/interceptor"

	"github.com/loraflow/loraflow/activities"
)

// energyInterceptor measures every activity the worker runs.
type energyInterceptor struct {
	interceptor.WorkerInterceptorBase
	acts *activities.Activities
}

func newEnergyInterceptor(acts *activities.Activities) interceptor.WorkerInterceptor {
	return &energyInterceptor{acts: acts}
}

func (e *energyInterceptor) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	i := &energyActivityInbound{acts: e.acts}
	i.Next = next
	return i
}

type energyActivityInbound struct {
	interceptor.ActivityInboundInterceptorBase
	acts *activities.Activities
}

func (i *energyActivityInbound) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	return i.Next.ExecuteActivity(ctx, in)
}
