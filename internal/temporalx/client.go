package temporalx

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
)

// ConnOptions say how to reach Temporal.
type ConnOptions struct {
	Address   string // host:port
	Namespace string
	TLSCert   string // client certificate (mTLS), PEM file
	TLSKey    string
	TLSCA     string // server CA, PEM file
}

// FromEnv fills unset fields from LORAFLOW_* environment variables.
func (o *ConnOptions) FromEnv() {
	set := func(dst *string, env string) {
		if *dst == "" {
			*dst = os.Getenv(env)
		}
	}
	set(&o.Address, "LORAFLOW_TEMPORAL_ADDRESS")
	set(&o.Namespace, "LORAFLOW_NAMESPACE")
	set(&o.TLSCert, "LORAFLOW_TLS_CERT")
	set(&o.TLSKey, "LORAFLOW_TLS_KEY")
	set(&o.TLSCA, "LORAFLOW_TLS_CA")
	if o.Namespace == "" {
		o.Namespace = "default"
	}
}

// ClientOptions builds Temporal client options.
func (o ConnOptions) ClientOptions(logger *slog.Logger) (client.Options, error) {
	opts := client.Options{HostPort: o.Address, Namespace: o.Namespace, Logger: log.NewStructuredLogger(logger)}
	if o.TLSCert != "" || o.TLSCA != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if o.TLSCert != "" {
			cert, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
			if err != nil {
				return opts, fmt.Errorf("temporal TLS client certificate: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		if o.TLSCA != "" {
			pem, err := os.ReadFile(o.TLSCA)
			if err != nil {
				return opts, fmt.Errorf("temporal TLS CA: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return opts, fmt.Errorf("temporal TLS CA %s: no certificates", o.TLSCA)
			}
			tc.RootCAs = pool
		}
		opts.ConnectionOptions.TLS = tc
	}
	return opts, nil
}

// Reachable reports whether a TCP connection to addr opens within timeout.
func Reachable(addr string, timeout time.Duration) bool {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Check dials Temporal and asks for the namespace's server health.
func Check(ctx context.Context, o ConnOptions, logger *slog.Logger) error {
	opts, err := o.ClientOptions(logger)
	if err != nil {
		return err
	}
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return fmt.Errorf("temporal at %s: %w", o.Address, err)
	}
	defer c.Close()
	if _, err := c.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		return fmt.Errorf("temporal at %s: %w", o.Address, err)
	}
	return nil
}
