package artifact

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestLockWorkDirIsExclusive(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.LockWorkDir("train", "k1", "first")
	if err != nil {
		t.Fatal(err)
	}
	// flock(2) locks belong to the open file: a second open in the same
	// process conflicts too, so two attempts in one worker are kept apart.
	_, err = s.LockWorkDir("train", "k1", "second")
	var le *LockedError
	if !errors.As(err, &le) || !errors.Is(err, ErrWorkDirLocked) {
		t.Fatalf("second lock: err = %v, want a LockedError", err)
	}
	if le.Owner == nil || le.Owner.PID != os.Getpid() || le.Owner.What != "first" || !strings.Contains(err.Error(), "first") {
		t.Fatalf("the error does not name the holder: %v", err)
	}
	other, err := s.LockWorkDir("train", "k2", "other key")
	if err != nil {
		t.Fatalf("another key is independent: %v", err)
	}
	other.Unlock()
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	l2, err := s.LockWorkDir("train", "k1", "third")
	if err != nil {
		t.Fatalf("after Unlock: %v", err)
	}
	l2.Unlock()
}

// TestLockWorkDirReleasedWhenHolderIsKilled: a holder killed with SIGKILL
// leaves no stale lock (the kernel drops flock locks with the process).
func TestLockWorkDirReleasedWhenHolderIsKilled(t *testing.T) {
	if root := os.Getenv("LORAFLOW_LOCK_HOLDER"); root != "" {
		s, err := Open(root)
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		if _, err := s.LockWorkDir("train", "k", "child"); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("locked")
		select {} // held until killed
	}
	root := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockWorkDirReleasedWhenHolderIsKilled$")
	cmd.Env = append(os.Environ(), "LORAFLOW_LOCK_HOLDER="+root)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "locked" {
		t.Fatalf("holder: %q", line)
	}
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.LockWorkDir("train", "k", "parent")
	var le *LockedError
	if !errors.As(err, &le) || le.Owner == nil || le.Owner.PID != cmd.Process.Pid {
		t.Fatalf("while the child holds it: err = %v", err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	l, err := s.LockWorkDir("train", "k", "parent")
	if err != nil {
		t.Fatalf("after the holder was killed: %v", err)
	}
	l.Unlock()
}
