package activities

// Usage is one activity's measured energy and emissions.
type Usage struct {
	Activity    string
	Seconds     float64
	EnergyKWh   float64
	EmissionsKg float64
	Method      string
}

// CarbonSummary totals the activities of a run.
type CarbonSummary struct {
	Activities  []Usage
	EnergyKWh   float64
	EmissionsKg float64
}

// SumUsage totals per-activity usage.
func SumUsage(us ...Usage) CarbonSummary {
	var s CarbonSummary
	for _, u := range us {
		if u.Activity == "" {
			continue
		}
		s.Activities = append(s.Activities, u)
		s.EnergyKWh += u.EnergyKWh
		s.EmissionsKg += u.EmissionsKg
	}
	return s
}
