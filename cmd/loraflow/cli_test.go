package main

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// runCLI runs the loraflow CLI in process with args and returns what it
// printed (stdout and stderr together).
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return out.String(), err
}
