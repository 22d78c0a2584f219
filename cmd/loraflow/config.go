package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.temporal.io/sdk/client"
	"gopkg.in/yaml.v3"

	"github.com/loraflow/loraflow/internal/temporalx"
	"github.com/loraflow/loraflow/registry"
)

// One vocabulary for every command: a setting has one flag name, one
// LORAFLOW_* variable and one key in the config file (the flag's name), and
// is resolved in one order everywhere:
//
//	flag > LORAFLOW_* environment > config file > default
//
// The config file is $XDG_CONFIG_HOME/loraflow/config.yaml (else
// ~/.config/loraflow/config.yaml, os.UserConfigDir), or the file
// $LORAFLOW_CONFIG names. `loraflow config` prints each setting with where
// its value came from.

// setting is one entry of the vocabulary.
type setting struct {
	name  string // flag name and config-file key
	env   string
	def   func() string
	usage string
}

func constant(v string) func() string { return func() string { return v } }

// settings lists every shared setting. Commands pick the ones they use.
var settings = []setting{
	{"address", "LORAFLOW_TEMPORAL_ADDRESS", constant(""), "Temporal frontend host:port (empty: the embedded default's dev server on 127.0.0.1:--dev-port)"},
	{"namespace", "LORAFLOW_NAMESPACE", constant("default"), "Temporal namespace"},
	{"dev-port", "LORAFLOW_DEV_PORT", constant("7233"), "port of the embedded default's dev server (Web UI on port + 1000)"},
	{"task-queue", "LORAFLOW_TASK_QUEUE", constant("loraflow"), "task queue of the loraflow workers"},
	{"tls-cert", "LORAFLOW_TLS_CERT", constant(""), "client certificate PEM for Temporal (mTLS)"},
	{"tls-key", "LORAFLOW_TLS_KEY", constant(""), "client key PEM for Temporal (mTLS)"},
	{"tls-ca", "LORAFLOW_TLS_CA", constant(""), "Temporal server CA PEM"},
	{"registry", registry.EnvRegistryURI, defaultRegistry, "registry URI (file://PATH or http(s)://MLFLOW)"},
	{"signing-key", "LORAFLOW_SIGNING_KEY", constant(""), "signing key (PEM file or env://VAR; empty: the embedded default's key)"},
	{"artifact-root", "LORAFLOW_ARTIFACT_ROOT", defaultArtifactRoot, "artifact store of the in-process worker"},
}

// connSettings are what a command that talks to Temporal uses.
var connSettings = []string{"address", "namespace", "dev-port", "task-queue", "tls-cert", "tls-key", "tls-ca"}

// defaultRegistry is the embedded default's registry (what registry.DefaultURI
// gives when the variable is unset: resolution reads the variable first).
func defaultRegistry() string { return registry.DefaultURI() }

func defaultArtifactRoot() string {
	dir, err := temporalx.DataDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "artifacts")
}

func lookupSetting(name string) setting {
	for _, s := range settings {
		if s.name == name {
			return s
		}
	}
	panic("loraflow: no setting " + name)
}

// envPrefixed says in a flag's help which variable and key also set it.
func (s setting) help() string {
	return fmt.Sprintf("%s (env %s)", s.usage, s.env)
}

// addSettings registers the named settings as flags of cmd. Their default
// shown in --help is empty: the resolved default depends on the
// environment and the config file (`loraflow config` shows it).
func addSettings(fs *pflag.FlagSet, names ...string) {
	for _, n := range names {
		s := lookupSetting(n)
		if fs.Lookup(n) != nil {
			continue
		}
		fs.String(n, "", s.help())
	}
}

// source says where a resolved value came from.
type source string

const (
	fromFlag    source = "flag"
	fromEnv     source = "env"
	fromFile    source = "config file"
	fromDefault source = "default"
)

// configFile returns the config file's path (it need not exist).
func configFile() (string, error) {
	if p := os.Getenv("LORAFLOW_CONFIG"); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "loraflow", "config.yaml"), nil
}

// maxConfigFile bounds the config file read.
const maxConfigFile = 64 << 10

// readConfigFile reads the config file's settings; a missing file is no
// settings. Unknown keys are refused, naming the file and the key.
func readConfigFile() (map[string]string, string, error) {
	path, err := configFile()
	if err != nil {
		return nil, "", nil
	}
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, path, nil
	}
	if err != nil {
		return nil, path, fmt.Errorf("config file %s: %w", path, err)
	}
	if fi.Size() > maxConfigFile {
		return nil, path, fmt.Errorf("config file %s: %d bytes, over the %d-byte limit", path, fi.Size(), maxConfigFile)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, path, fmt.Errorf("config file %s: %w", path, err)
	}
	var raw map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&raw); err != nil && !errors.Is(err, io.EOF) { // io.EOF: an empty file
		return nil, path, fmt.Errorf("config file %s: %w", path, err)
	}
	out := map[string]string{}
	for k, v := range raw {
		if !slices.ContainsFunc(settings, func(s setting) bool { return s.name == k }) {
			return nil, path, fmt.Errorf("config file %s: unknown key %q (keys are the flag names: %s)", path, k, settingNames())
		}
		switch v := v.(type) {
		case string:
			out[k] = v
		case int:
			out[k] = strconv.Itoa(v)
		default:
			return nil, path, fmt.Errorf("config file %s: key %q: want a string or a number, got %T", path, k, v)
		}
	}
	return out, path, nil
}

func settingNames() string { return strings.Join(settingNamesList(), ", ") }

// resolved is the value of every setting for one command invocation.
type resolved struct {
	values  map[string]string
	sources map[string]source
	file    string
}

// resolveSettings resolves every setting for cmd: its flag when set, else
// the variable, else the config file, else the default.
func resolveSettings(cmd *cobra.Command) (*resolved, error) {
	file, path, err := readConfigFile()
	if err != nil {
		return nil, err
	}
	r := &resolved{values: map[string]string{}, sources: map[string]source{}, file: path}
	for _, s := range settings {
		var fl *pflag.Flag
		if cmd != nil {
			fl = cmd.Flags().Lookup(s.name)
		}
		switch v, inFile := file[s.name]; {
		case fl != nil && fl.Changed:
			r.values[s.name], r.sources[s.name] = fl.Value.String(), fromFlag
		case os.Getenv(s.env) != "":
			r.values[s.name], r.sources[s.name] = os.Getenv(s.env), fromEnv
		case inFile:
			r.values[s.name], r.sources[s.name] = v, fromFile
		default:
			r.values[s.name], r.sources[s.name] = s.def(), fromDefault
		}
	}
	if _, err := r.devPort(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *resolved) get(name string) string { return r.values[name] }

func (r *resolved) devPort() (int, error) {
	p, err := strconv.Atoi(r.values["dev-port"])
	if err != nil || p < 1 || p > 64535 {
		return 0, fmt.Errorf("dev-port %q (from %s): want a port number from 1 to 64535 (the Web UI takes port + 1000)", r.values["dev-port"], r.sources["dev-port"])
	}
	return p, nil
}

// embedded reports whether no Temporal server is configured, so the
// commands talk to the embedded default's dev server.
func (r *resolved) embedded() bool { return r.values["address"] == "" }

// conn is how to reach Temporal: the configured server, or the embedded
// default's dev server (plaintext, the default namespace).
func (r *resolved) conn() temporalx.ConnOptions {
	if r.embedded() {
		p, _ := r.devPort()
		return temporalx.ConnOptions{Address: devAddress(p), Namespace: "default"}
	}
	return temporalx.ConnOptions{
		Address: r.values["address"], Namespace: r.values["namespace"],
		TLSCert: r.values["tls-cert"], TLSKey: r.values["tls-key"], TLSCA: r.values["tls-ca"],
	}
}

func devAddress(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }

// connFlags are the flags every command that talks to Temporal shares.
type connFlags struct {
	cmd       *cobra.Command
	cfg       *resolved
	conn      temporalx.ConnOptions
	taskQueue string
}

func (f *connFlags) add(cmd *cobra.Command) {
	f.cmd = cmd
	addSettings(cmd.Flags(), connSettings...)
}

// resolve fills conn and taskQueue from the flags, environment and config.
func (f *connFlags) resolve() error {
	cfg, err := resolveSettings(f.cmd)
	if err != nil {
		return err
	}
	f.cfg, f.conn, f.taskQueue = cfg, cfg.conn(), cfg.get("task-queue")
	return nil
}

// dial connects to the configured server, or to the embedded default's dev
// server. When nothing listens there it says so, and how to start it,
// instead of the gRPC dialer's "connection refused".
func (f *connFlags) dial(ctx context.Context, logger *slog.Logger) (client.Client, error) {
	if err := f.resolve(); err != nil {
		return nil, err
	}
	if !temporalx.Reachable(f.conn.Address, 2*time.Second) {
		return nil, unreachableError(f.cfg, f.conn.Address)
	}
	opts, err := f.conn.ClientOptions(logger)
	if err != nil {
		return nil, err
	}
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("temporal at %s (namespace %s): %w", f.conn.Address, f.conn.Namespace, err)
	}
	return c, nil
}

// unreachableError explains that no Temporal server answers at addr.
func unreachableError(cfg *resolved, addr string) error {
	if cfg.embedded() {
		db := "the dev server's database"
		if dir, err := temporalx.DataDir(); err == nil {
			db = filepath.Join(dir, devDBFile)
		}
		return fmt.Errorf("the embedded default's Temporal dev server is not running (nothing listens on %s); "+
			"`loraflow dev start` starts it again with the runs kept in %s, or set --address / LORAFLOW_TEMPORAL_ADDRESS", addr, db)
	}
	return fmt.Errorf("no Temporal server answers at %s (from %s); check --address / LORAFLOW_TEMPORAL_ADDRESS", addr, cfg.sources["address"])
}

func init() { register(newConfigCmd) }

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show every shared setting, its value and where it came from",
		Long: `Config prints the settings that every loraflow command resolves the same way:
a flag, else its LORAFLOW_* variable, else the config file
($XDG_CONFIG_HOME/loraflow/config.yaml or $LORAFLOW_CONFIG; its keys are the
flag names), else the default.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := resolveSettings(cmd)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "config file: %s\n", cfg.file)
			for _, s := range settings {
				v := cfg.values[s.name]
				if v == "" {
					v = "-"
				}
				fmt.Fprintf(out, "  %-14s %-50s %s (%s)\n", s.name, v, cfg.sources[s.name], s.env)
			}
			return nil
		},
	}
	addSettings(cmd.Flags(), settingNamesList()...)
	return cmd
}

func settingNamesList() []string {
	var n []string
	for _, s := range settings {
		n = append(n, s.name)
	}
	return n
}
