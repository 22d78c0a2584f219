// Package userdata names the folder where loraflow keeps a local user's
// state (the embedded default's Temporal database, artifacts, registry and
// signing key), following the XDG Base Directory specification:
// $XDG_DATA_HOME/loraflow, else ~/.local/share/loraflow.
package userdata

import (
	"os"
	"path/filepath"
)

// Dir returns the folder (without creating it).
func Dir() (string, error) {
	base := os.Getenv("XDG_DATA_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		base = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(base, "loraflow"), nil
}
