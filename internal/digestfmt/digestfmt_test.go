package digestfmt

import "testing"

func TestShort(t *testing.T) {
	for in, want := range map[string]string{
		"":                        "",
		"abc":                     "abc",
		"0123456789abcdef":        "0123456789ab",
		"sha256:0123456789abcdef": "sha256:0123456789ab",
		"sha256:0123":             "sha256:0123",
		"0123456789ab":            "0123456789ab",
	} {
		if got := Short(in); got != want {
			t.Errorf("Short(%q) = %q, want %q", in, got, want)
		}
	}
}
