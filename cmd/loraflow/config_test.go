package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestSettingsOrder: a flag beats LORAFLOW_*, which beats the config file,
// which beats the default; every command reads the same names.
func TestSettingsOrder(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "config.yaml")
	t.Setenv("LORAFLOW_CONFIG", cfgFile)
	for _, s := range settings {
		t.Setenv(s.env, "")
	}
	if err := os.WriteFile(cfgFile, []byte("namespace: from-file\ndev-port: 7300\ntask-queue: q-file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LORAFLOW_TASK_QUEUE", "q-env")
	t.Setenv("LORAFLOW_TEMPORAL_ADDRESS", "temporal.example:7233")
	cmd := &cobra.Command{Use: "x"}
	addSettings(cmd.Flags(), connSettings...)
	if err := cmd.Flags().Parse([]string{"--namespace", "from-flag"}); err != nil {
		t.Fatal(err)
	}
	r, err := resolveSettings(cmd)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]struct {
		v string
		s source
	}{
		"namespace":  {"from-flag", fromFlag},
		"task-queue": {"q-env", fromEnv},
		"dev-port":   {"7300", fromFile},
		"address":    {"temporal.example:7233", fromEnv},
		"tls-ca":     {"", fromDefault},
	} {
		if r.get(name) != want.v || r.sources[name] != want.s {
			t.Errorf("%s = %q from %s, want %q from %s", name, r.get(name), r.sources[name], want.v, want.s)
		}
	}
	if c := r.conn(); c.Address != "temporal.example:7233" || c.Namespace != "from-flag" {
		t.Errorf("conn = %+v", c)
	}
	// No address: the embedded default's dev server on the resolved port.
	t.Setenv("LORAFLOW_TEMPORAL_ADDRESS", "")
	r, _ = resolveSettings(cmd)
	if c := r.conn(); c.Address != "127.0.0.1:7300" || c.Namespace != "default" {
		t.Errorf("embedded conn = %+v", c)
	}
}

func TestConfigFileRefusesUnknownKeysAndBadPorts(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "config.yaml")
	t.Setenv("LORAFLOW_CONFIG", cfgFile)
	t.Setenv("LORAFLOW_DEV_PORT", "")
	for body, want := range map[string]string{
		"adress: x\n":       `unknown key "adress"`,
		"dev-port: 70000\n": "want a port number",
		"registry: [a]\n":   `key "registry": want a string`,
	} {
		if err := os.WriteFile(cfgFile, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := resolveSettings(nil)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error()+cfgFile, cfgFile) {
			t.Errorf("%q: err = %v, want %q", body, err, want)
		}
	}
	if err := os.WriteFile(cfgFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := resolveSettings(nil); err != nil {
		t.Errorf("empty config file: %v", err)
	}
}

// TestEveryTemporalCommandHasTheSameFlags: status, cancel, runs ls and the
// schedule commands all take --address, --namespace and --dev-port.
func TestEveryTemporalCommandHasTheSameFlags(t *testing.T) {
	root := newRootCmd()
	for _, path := range [][]string{{"status"}, {"cancel"}, {"runs", "ls"}, {"run"}, {"schedule", "create"}, {"schedule", "list"}, {"schedule", "describe"}, {"schedule", "delete"}} {
		c, _, err := root.Find(path)
		if err != nil {
			t.Fatalf("%v: %v", path, err)
		}
		for _, name := range connSettings {
			if c.Flags().Lookup(name) == nil {
				t.Errorf("loraflow %s has no --%s", strings.Join(path, " "), name)
			}
		}
	}
}
