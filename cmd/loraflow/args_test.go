package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func TestPositionalNames(t *testing.T) {
	for use, want := range map[string][]string{
		"show MODEL VERSION|@ALIAS":                                    {"MODEL", "VERSION|@ALIAS"},
		"inspect ADAPTER [--base MODEL] [--plot spectra.png] [--json]": {"ADAPTER"},
		"verify PATH...": {"PATH"},
		"create --spec FILE --id ID (--cron EXPR... | --every DURATION)": nil,
		"ls [MODEL]": nil,
	} {
		if got := positionalNames(use); !slices.Equal(got, want) {
			t.Errorf("positionalNames(%q) = %q, want %q", use, got, want)
		}
	}
}

func TestArgsErrorsNameWhatIsMissing(t *testing.T) {
	parent := &cobra.Command{Use: "registry"}
	cmd := &cobra.Command{Use: "show MODEL VERSION|@ALIAS", Args: exactArgs(2), RunE: func(*cobra.Command, []string) error { return nil }}
	parent.AddCommand(cmd)
	for args, want := range map[string]string{
		"m":       "show: missing VERSION|@ALIAS (usage: registry show MODEL VERSION|@ALIAS)",
		"":        "show: missing MODEL and VERSION|@ALIAS",
		"m 1 2 3": "show: takes 2 argument(s), got 4 (2 3)",
	} {
		err := cmd.Args(cmd, strings.Fields(args))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("args %q: %v, want %q", args, err, want)
		}
	}
	if err := cmd.Args(cmd, []string{"m", "1"}); err != nil {
		t.Error(err)
	}
}
