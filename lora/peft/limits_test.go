package peft

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestLoadRefusesHugeOrSpecialConfig: adapter_config.json is read only when
// it is a regular file of at most MaxConfigBytes; the error names the file.
func TestLoadRefusesHugeOrSpecialConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ConfigFile)
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, MaxConfigBytes+1); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "over the 4194304-byte limit") || !strings.Contains(err.Error(), path) {
		t.Errorf("huge adapter_config.json: %v", err)
	}
	os.Remove(path)
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("FIFO adapter_config.json: %v", err)
	}
}
