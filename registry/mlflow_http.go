package registry

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Environment variables read by MLflowOptionsFromEnv. The MLFLOW_* names are
// the ones MLflow's own clients read; LORAFLOW_MLFLOW_TOKEN_FILE points at a
// mounted secret holding a bearer token (re-read on every request, so a
// rotated secret is picked up).
const (
	EnvMLflowToken       = "MLFLOW_TRACKING_TOKEN"
	EnvMLflowTokenFile   = "LORAFLOW_MLFLOW_TOKEN_FILE"
	EnvMLflowUsername    = "MLFLOW_TRACKING_USERNAME"
	EnvMLflowPassword    = "MLFLOW_TRACKING_PASSWORD"
	EnvMLflowInsecureTLS = "MLFLOW_TRACKING_INSECURE_TLS"
	EnvMLflowExperiment  = "MLFLOW_EXPERIMENT_NAME"
)

// MLflowOptions configures the MLflow client.
type MLflowOptions struct {
	// TrackingURI is the server's base URL, e.g. http://mlflow:5000 (a path
	// prefix is kept: http://host/mlflow).
	TrackingURI string
	// Experiment receives the publish runs (default "loraflow").
	Experiment string
	// Token is sent as "Authorization: Bearer"; TokenFile is read for it on
	// every request when Token is empty.
	Token     string
	TokenFile string
	// Username and Password are sent as basic auth when no token is set.
	Username, Password string
	InsecureSkipVerify bool
	// HTTPClient overrides the default client (no overall timeout, so large
	// artifacts can stream; 5 minutes to wait for an answer once a request is sent).
	HTTPClient *http.Client
	// MaxAttempts per request for 5xx, 429 and connection errors (default 6).
	MaxAttempts int
	// InitialBackoff doubles after each failed attempt up to MaxBackoff
	// (defaults 250 ms and 10 s), with jitter.
	InitialBackoff, MaxBackoff time.Duration
	// ReadyTimeout bounds the wait for a model version to become READY
	// (default 10 min); PollInterval is the wait between checks (default 1 s).
	ReadyTimeout, PollInterval time.Duration
	Logger                     *slog.Logger
}

// MLflowOptionsFromEnv reads credentials and the experiment name from the environment.
func MLflowOptionsFromEnv() (MLflowOptions, error) {
	o := MLflowOptions{
		Token:      os.Getenv(EnvMLflowToken),
		TokenFile:  os.Getenv(EnvMLflowTokenFile),
		Username:   os.Getenv(EnvMLflowUsername),
		Password:   os.Getenv(EnvMLflowPassword),
		Experiment: os.Getenv(EnvMLflowExperiment),
	}
	if v := os.Getenv(EnvMLflowInsecureTLS); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return o, fmt.Errorf("registry: %s=%q: %w", EnvMLflowInsecureTLS, v, err)
		}
		o.InsecureSkipVerify = b
	}
	if o.TokenFile != "" {
		if _, err := os.Stat(o.TokenFile); err != nil {
			return o, fmt.Errorf("registry: %s: %w", EnvMLflowTokenFile, err)
		}
	}
	return o, nil
}

// APIError is an error answer from the MLflow server.
type APIError struct {
	Method     string
	Path       string
	StatusCode int
	// ErrorCode is MLflow's error_code, e.g. RESOURCE_ALREADY_EXISTS,
	// RESOURCE_DOES_NOT_EXIST, INVALID_PARAMETER_VALUE, UNAUTHENTICATED;
	// empty when the body was not MLflow's JSON error.
	ErrorCode string
	Message   string
}

func (e *APIError) Error() string {
	code := e.ErrorCode
	if code == "" {
		code = http.StatusText(e.StatusCode)
	}
	msg := e.Message
	if len(msg) > 500 {
		msg = msg[:500] + "..."
	}
	return fmt.Sprintf("mlflow: %s %s: HTTP %d %s: %s", e.Method, e.Path, e.StatusCode, code, msg)
}

// Retryable reports whether the request may succeed if sent again: server
// errors and 429 Too Many Requests; never other 4xx.
func (e *APIError) Retryable() bool {
	return e.StatusCode >= 500 || e.StatusCode == http.StatusTooManyRequests
}

// Is makes errors.Is(err, ErrNotFound) true for RESOURCE_DOES_NOT_EXIST.
func (e *APIError) Is(target error) bool {
	return target == ErrNotFound && (e.ErrorCode == "RESOURCE_DOES_NOT_EXIST" || e.StatusCode == http.StatusNotFound && e.ErrorCode == "")
}

// HasErrorCode reports whether err is an *APIError with the given error_code.
func HasErrorCode(err error, code string) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.ErrorCode == code
}

// isRetryable: connection-level failures and retryable API errors, but
// never a cancelled or expired context.
func isRetryable(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Retryable()
	}
	var nr *nonRetryableError
	return !errors.As(err, &nr)
}

type nonRetryableError struct{ err error }

func (e *nonRetryableError) Error() string { return e.err.Error() }
func (e *nonRetryableError) Unwrap() error { return e.err }

// httpClient is the transport part of the MLflow client.
type httpClient struct {
	opts MLflowOptions
	base *url.URL
	hc   *http.Client
	log  *slog.Logger
}

func newHTTPClient(opts MLflowOptions) (*httpClient, error) {
	base, err := url.Parse(strings.TrimRight(opts.TrackingURI, "/"))
	if err != nil {
		return nil, fmt.Errorf("registry: MLflow tracking URI %q: %w", opts.TrackingURI, err)
	}
	if base.Scheme != "http" && base.Scheme != "https" || base.Host == "" {
		return nil, fmt.Errorf("registry: MLflow tracking URI %q: want http(s)://host[:port]", opts.TrackingURI)
	}
	if base.User != nil {
		if opts.Username == "" {
			opts.Username = base.User.Username()
			opts.Password, _ = base.User.Password()
		}
		base.User = nil
	}
	base.RawQuery, base.Fragment = "", ""
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 6
	}
	if opts.InitialBackoff <= 0 {
		opts.InitialBackoff = 250 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 10 * time.Second
	}
	hc := opts.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if opts.InsecureSkipVerify {
			tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for by MLFLOW_TRACKING_INSECURE_TLS
		}
		// No overall timeout: a large merged model may take long to upload;
		// the caller's context bounds the whole publish, and a server that
		// takes the bytes but never answers is cut off here.
		tr.ResponseHeaderTimeout = 5 * time.Minute
		hc = &http.Client{Transport: tr}
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &httpClient{opts: opts, base: base, hc: hc, log: log}, nil
}

func (c *httpClient) authorize(req *http.Request) error {
	token := c.opts.Token
	if token == "" && c.opts.TokenFile != "" {
		b, err := os.ReadFile(c.opts.TokenFile)
		if err != nil {
			return &nonRetryableError{fmt.Errorf("mlflow: read token file: %w", err)}
		}
		token = strings.TrimSpace(string(b))
	}
	switch {
	case token != "":
		req.Header.Set("Authorization", "Bearer "+token)
	case c.opts.Username != "" || c.opts.Password != "":
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(c.opts.Username+":"+c.opts.Password)))
	}
	return nil
}

// requestSpec describes one HTTP request that can be built again for each attempt.
type requestSpec struct {
	method string
	path   string // below the base URL, starting with "/api/..."
	query  url.Values
	// body returns a fresh body for each attempt (nil: no body).
	body        func() (io.ReadCloser, int64, error)
	contentType string
	retryable   bool // false: a single attempt (used where a repeat could duplicate)
}

// do sends the request, retrying with backoff, and decodes a JSON answer into out.
func (c *httpClient) do(ctx context.Context, spec requestSpec, out any) error {
	attempts := c.opts.MaxAttempts
	if !spec.retryable {
		attempts = 1
	}
	backoff := c.opts.InitialBackoff
	var err error
	for attempt := 1; ; attempt++ {
		err = c.once(ctx, spec, out)
		if err == nil || attempt >= attempts || !isRetryable(ctx, err) {
			return err
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		c.log.WarnContext(ctx, "mlflow request failed, retrying", "method", spec.method, "path", spec.path, "attempt", attempt, "wait", wait, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (after: %w)", ctx.Err(), err)
		case <-time.After(wait):
		}
		backoff = min(backoff*2, c.opts.MaxBackoff)
	}
}

func (c *httpClient) once(ctx context.Context, spec requestSpec, out any) error {
	target := c.base.String() + spec.path
	if len(spec.query) > 0 {
		target += "?" + spec.query.Encode()
	}
	var body io.ReadCloser
	var length int64
	if spec.body != nil {
		b, n, err := spec.body()
		if err != nil {
			return &nonRetryableError{err}
		}
		body, length = b, n
	}
	req, err := http.NewRequestWithContext(ctx, spec.method, target, body)
	if err != nil {
		if body != nil {
			body.Close()
		}
		return &nonRetryableError{fmt.Errorf("mlflow: build %s %s: %w", spec.method, spec.path, err)}
	}
	if body != nil {
		req.ContentLength = length
		req.Header.Set("Content-Type", spec.contentType)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "loraflow-registry")
	if err := c.authorize(req); err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("mlflow: %s %s: %w", spec.method, spec.path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("mlflow: %s %s: read answer: %w", spec.method, spec.path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		ae := &APIError{Method: spec.method, Path: spec.path, StatusCode: resp.StatusCode}
		var e struct {
			ErrorCode string `json:"error_code"`
			Message   string `json:"message"`
		}
		if json.Unmarshal(data, &e) == nil && e.ErrorCode != "" {
			ae.ErrorCode, ae.Message = e.ErrorCode, e.Message
		} else {
			ae.Message = strings.TrimSpace(string(data))
			switch resp.StatusCode {
			case http.StatusUnauthorized:
				ae.ErrorCode = "UNAUTHENTICATED"
			case http.StatusForbidden:
				ae.ErrorCode = "PERMISSION_DENIED"
			}
		}
		return ae
	}
	if out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("mlflow: %s %s: decode answer: %w", spec.method, spec.path, err)
	}
	return nil
}

// callJSON sends a JSON body (POST, PATCH, DELETE) to /api/2.0/mlflow/<endpoint>.
func (c *httpClient) callJSON(ctx context.Context, method, endpoint string, in, out any, retryable bool) error {
	payload, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("mlflow: encode %s request: %w", endpoint, err)
	}
	return c.do(ctx, requestSpec{
		method: method,
		path:   "/api/2.0/mlflow/" + endpoint,
		body: func() (io.ReadCloser, int64, error) {
			return io.NopCloser(bytes.NewReader(payload)), int64(len(payload)), nil
		},
		contentType: "application/json",
		retryable:   retryable,
	}, out)
}

// get sends GET /api/2.0/mlflow/<endpoint>?query.
func (c *httpClient) get(ctx context.Context, endpoint string, query url.Values, out any) error {
	return c.do(ctx, requestSpec{method: http.MethodGet, path: "/api/2.0/mlflow/" + endpoint, query: query, retryable: true}, out)
}

// putFile streams a local file to the proxied artifact API.
func (c *httpClient) putFile(ctx context.Context, artifactPath, file string) error {
	segs := strings.Split(strings.Trim(artifactPath, "/"), "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return c.do(ctx, requestSpec{
		method: http.MethodPut,
		path:   "/api/2.0/mlflow-artifacts/artifacts/" + strings.Join(segs, "/"),
		body: func() (io.ReadCloser, int64, error) {
			f, err := os.Open(file)
			if err != nil {
				return nil, 0, fmt.Errorf("mlflow: upload %s: %w", file, err)
			}
			fi, err := f.Stat()
			if err != nil {
				f.Close()
				return nil, 0, fmt.Errorf("mlflow: upload %s: %w", file, err)
			}
			return f, fi.Size(), nil
		},
		contentType: "application/octet-stream",
		retryable:   true, // PUT of the same bytes to the same path is idempotent
	}, nil)
}
