package userdata

import (
	"path/filepath"
	"testing"
)

func TestDirFollowsXDG(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", "/x/data")
	if d, err := Dir(); err != nil || d != "/x/data/loraflow" {
		t.Fatalf("Dir = %q, %v", d, err)
	}
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("HOME", "/home/u")
	if d, err := Dir(); err != nil || d != filepath.Join("/home/u", ".local", "share", "loraflow") {
		t.Fatalf("Dir = %q, %v", d, err)
	}
}
