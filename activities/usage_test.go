package activities

import (
	"testing"

	"github.com/loraflow/loraflow/argo"
	"github.com/loraflow/loraflow/carbon"
)

// TrainLoRA's energy is every attempt's: the next attempt adds its own to
// what the last heartbeat of the earlier ones reported (here 0.25 kWh over
// 600 s, as a worker killed at some step left it).
func TestTrainEnergySumsEveryAttempt(t *testing.T) {
	w := newWorld(t, nil)
	prep := w.prepare(t)
	earlier := Usage{Activity: "TrainLoRA", DurationS: 600, EnergyKWh: 0.25, EmissionsKg: 0.01, CPUEnergyKWh: 0.25, PUE: 1}
	env := w.env()
	env.SetHeartbeatDetails(TrainProgress{Step: 2, TotalSteps: 4, Usage: &earlier})
	v, err := env.ExecuteActivity(w.acts.TrainLoRA, TrainInput{Spec: w.spec, Snapshot: prep.Snapshot, BaseModel: prep.BaseModel})
	if err != nil {
		t.Fatal(err)
	}
	var out TrainOutput
	v.Get(&out)
	u := out.Usage
	if u.Activity != "TrainLoRA" || u.EnergyKWh <= earlier.EnergyKWh || u.DurationS <= earlier.DurationS || u.EmissionsKg <= earlier.EmissionsKg {
		t.Fatalf("usage %+v does not include the earlier attempt's %+v", u, earlier)
	}
	// The counterfactual is computed where training ends, from that energy.
	cf := out.Counterfactual
	if cf == nil || cf.LoRAEnergyKWh != u.EnergyKWh || cf.FullEnergyKWh <= 0 {
		t.Fatalf("counterfactual %+v for usage %+v", cf, u)
	}
}

// With a remote trainer the attested energy is the trainer's own report,
// not the worker's waiting for it.
func TestTrainEnergyIsTheRemoteTrainersReport(t *testing.T) {
	w := newWorld(t, nil)
	prep := w.prepare(t)
	reported := carbon.Report{Activity: "TrainLoRA", DurationS: 3600, EnergyKWh: 1.5, GPUEnergyKWh: 1.2, CPUEnergyKWh: 0.3, EmissionsKg: 0.08, GPUModel: "Fake GPU 80GB", GPUCount: 1, PUE: 1}
	w.acts.RemoteTrainer = argo.RemoteTrainer(&fakeArgo{reported: &reported})
	v, err := w.env().ExecuteActivity(w.acts.TrainLoRA, TrainInput{Spec: w.spec, Snapshot: prep.Snapshot, BaseModel: prep.BaseModel})
	if err != nil {
		t.Fatal(err)
	}
	var out TrainOutput
	v.Get(&out)
	if out.Usage.EnergyKWh != reported.EnergyKWh || out.Usage.GPUModel != reported.GPUModel || out.Usage.DurationS != reported.DurationS {
		t.Fatalf("usage %+v, want the trainer's report %+v", out.Usage, reported)
	}
	if out.Counterfactual == nil || out.Counterfactual.LoRAEnergyKWh != reported.EnergyKWh {
		t.Fatalf("counterfactual %+v not from the trainer's energy", out.Counterfactual)
	}
}

// Every measured activity counts its earlier attempts: Evaluate's
// heartbeats carry the energy so far (Heartbeat.Usage), and a retry adds
// its own to what the last one carried.
func TestEvaluateEnergySumsEveryAttempt(t *testing.T) {
	w := newTrained(t)
	earlier := Usage{Activity: "Evaluate", DurationS: 120, EnergyKWh: 0.05, EmissionsKg: 0.002, CPUEnergyKWh: 0.05, PUE: 1}
	env := w.env()
	env.SetHeartbeatDetails(Heartbeat{Status: "evaluating adapter", Usage: &earlier})
	v, err := env.ExecuteActivity(w.acts.Evaluate, EvaluateInput{Spec: w.spec, Snapshot: w.prep.Snapshot, BaseModel: w.prep.BaseModel, Adapter: w.att.Artifact})
	if err != nil {
		t.Fatal(err)
	}
	var ev EvaluateOutput
	v.Get(&ev)
	if u := ev.Usage; u.Activity != "Evaluate" || u.EnergyKWh <= earlier.EnergyKWh || u.DurationS <= earlier.DurationS {
		t.Fatalf("usage %+v does not include the earlier attempt's %+v", u, earlier)
	}
}

// What a measuring keep-alive sends: a status as a Heartbeat, training
// progress with its Usage, both with the energy of every attempt so far.
func TestHeartbeatsCarryTheEnergySoFar(t *testing.T) {
	so := Usage{Activity: "Merge", EnergyKWh: 0.3}
	k := &keepAlive{usage: func() Usage { return so }}
	if hb, ok := k.payload("merged 3/7 tensors").(Heartbeat); !ok || hb.Status != "merged 3/7 tensors" || hb.Usage == nil || hb.Usage.EnergyKWh != 0.3 {
		t.Fatalf("status heartbeat %+v", k.payload("merged 3/7 tensors"))
	}
	if tp, ok := k.payload(TrainProgress{Step: 5}).(TrainProgress); !ok || tp.Step != 5 || tp.Usage == nil || tp.Usage.EnergyKWh != 0.3 {
		t.Fatalf("training heartbeat %+v", k.payload(TrainProgress{Step: 5}))
	}
	if d := (&keepAlive{}).payload("loading"); d != "loading" {
		t.Fatalf("a keep-alive that does not measure sends %v", d)
	}
}
