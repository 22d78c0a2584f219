package temporalx

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/loraflow/loraflow/internal/userdata"
)

// TemporalCLIVersion is the Temporal CLI the embedded default expects
// (later versions cannot be `go install`ed here, see docs/architecture.md, Tools and versions).
const TemporalCLIVersion = "v1.5.1"

// DevServer is a Temporal CLI dev server started by loraflow.
type DevServer struct {
	Address string
	UIPort  int
	cmd     *exec.Cmd
	done    chan error
}

// FindTemporalCLI locates the `temporal` binary: $LORAFLOW_TEMPORAL_CLI,
// then PATH, then $GOPATH/bin.
func FindTemporalCLI() (string, error) {
	if p := os.Getenv("LORAFLOW_TEMPORAL_CLI"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("temporal"); err == nil {
		return p, nil
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		home, _ := os.UserHomeDir()
		gopath = filepath.Join(home, "go")
	}
	p := filepath.Join(gopath, "bin", "temporal")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("the Temporal CLI is not installed: run `go install github.com/temporalio/cli/cmd/temporal@%s` (the README's setup command does)", TemporalCLIVersion)
}

// DataDir is loraflow's per-user data folder ($XDG_DATA_HOME/loraflow or
// ~/.local/share/loraflow).
func DataDir() (string, error) {
	d, err := userdata.Dir()
	if err != nil {
		return "", err
	}
	return d, os.MkdirAll(d, 0o755)
}

// StartDevServer starts `temporal server start-dev` on 127.0.0.1:port with
// a SQLite database file, and waits until it accepts connections. With
// ui false the Web UI is off.
func StartDevServer(ctx context.Context, dbFile string, port int, ui bool, logFile string) (*DevServer, error) {
	return startDevServer(ctx, dbFile, port, ui, logFile, false)
}

// StartDetachedDevServer is StartDevServer for a server that outlives this
// process: it runs in its own session (no terminal's hangup or Ctrl-C
// reaches it) until Stop, or StopPID from another process.
func StartDetachedDevServer(ctx context.Context, dbFile string, port int, ui bool, logFile string) (*DevServer, error) {
	return startDevServer(ctx, dbFile, port, ui, logFile, true)
}

func startDevServer(ctx context.Context, dbFile string, port int, ui bool, logFile string, detach bool) (*DevServer, error) {
	bin, err := FindTemporalCLI()
	if err != nil {
		return nil, err
	}
	args := []string{"server", "start-dev", "--ip", "127.0.0.1", "--port", strconv.Itoa(port),
		"--db-filename", dbFile, "--log-level", "warn"}
	uiPort := 0
	if ui {
		uiPort = port + 1000
		args = append(args, "--ui-port", strconv.Itoa(uiPort))
	} else {
		args = append(args, "--headless")
	}
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if detach {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // its own session and process group
	}
	if logFile != "" {
		f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		cmd.Stdout, cmd.Stderr = f, f
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the Temporal dev server: %w", err)
	}
	s := &DevServer{Address: fmt.Sprintf("127.0.0.1:%d", port), UIPort: uiPort, cmd: cmd, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for !Reachable(s.Address, 200*time.Millisecond) {
		select {
		case err := <-s.done:
			return nil, fmt.Errorf("the Temporal dev server exited at start (%v); see %s", err, logFile)
		case <-ctx.Done():
			s.Stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, errors.New("the Temporal dev server did not start within 60s")
		}
	}
	return s, nil
}

// PID is the dev server's process ID (also its process group's).
func (s *DevServer) PID() int { return s.cmd.Process.Pid }

// Stop ends the dev server.
func (s *DevServer) Stop() {
	if s == nil || s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}

// StopPID ends a dev server started detached by another process: SIGTERM
// to its process group, SIGKILL after timeout. It returns once the process
// is gone.
func StopPID(pid int, timeout time.Duration) error {
	if pid <= 1 {
		return fmt.Errorf("dev server pid %d: not a process loraflow started", pid)
	}
	if err := syscall.Kill(-pid, syscall.SIGTERM); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		return fmt.Errorf("stopping the dev server (pid %d): %w", pid, err)
	}
	deadline := time.Now().Add(timeout)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			deadline = time.Now().Add(timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// alive reports whether pid is a live process (not a zombie).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	// Field 3, after the parenthesised command name, is the state.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// IsDevServer reports whether pid runs the Temporal CLI's dev server (so a
// stale pid file never makes loraflow signal another program).
func IsDevServer(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(string(b), "\x00")
	return len(args) > 2 && slices.Contains(args, "server") && slices.Contains(args, "start-dev")
}
