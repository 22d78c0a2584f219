package loraflow

import "testing"

func TestActivitySlots(t *testing.T) {
	const gib = 1 << 30
	for _, c := range []struct {
		limit, per int64
		want       int
	}{
		{128 * gib, 0, 25},      // 0.8 × 128 / 4
		{16 * gib, 4 * gib, 3},  // 12.8 / 4
		{2 * gib, 4 * gib, 1},   // never below one
		{64 * gib, 16 * gib, 3}, // a larger model per activity
	} {
		if got := activitySlots(c.limit, c.per); got != c.want {
			t.Errorf("activitySlots(%d GiB, %d GiB) = %d, want %d", c.limit/gib, c.per/gib, got, c.want)
		}
	}
	if memoryLimit() <= 0 {
		t.Error("no memory limit read on Linux")
	}
}
