package dcsapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Operation names, used in errors and in CallInfo.
const (
	OpScanClients      = "ScanClients"
	OpListClients      = "ListClients"
	OpShowJobInfo      = "ShowJobInfo"
	OpListInstances    = "ListInstances"
	OpShowInstance     = "ShowInstance"
	OpListLogicalNodes = "ListLogicalNodes"
	OpIAMToken         = "IAMToken"
)

// Defaults of Config.
const (
	DefaultTimeout          = 30 * time.Second
	DefaultMaxResponseBytes = 32 << 20
	DefaultUserAgent        = "dcsjobs/1"
)

// Config configures a Client. Zero values take the documented defaults.
type Config struct {
	// Endpoint is the DCS base URL, e.g. "https://dcs.ap-southeast-1.myhuaweicloud.com"
	// or a simulator's "http://127.0.0.1:8780". It may carry a path prefix.
	// Empty: derived from Region as https://dcs.{Region}.myhuaweicloud.com.
	Endpoint string
	// Region, e.g. "ap-southeast-1"; used only when Endpoint is empty.
	Region string
	// ProjectID is the IAM project of the region. Required: it is part of
	// every path, and is sent as X-Project-Id.
	ProjectID string
	// Auth adds credentials; required.
	Auth Authenticator
	// HTTPClient defaults to a shared client with keep-alive connection reuse
	// and no overall timeout (each request gets Timeout through its context).
	HTTPClient *http.Client
	// Timeout bounds each HTTP request (including reading the body) when the
	// caller's context has no earlier deadline. Default 30 s; negative: none.
	Timeout time.Duration
	// MaxResponseBytes caps every response body; reading stops there with a
	// BodyTooLargeError. Default 32 MiB (a 1000-session page is about 400 KiB).
	MaxResponseBytes int64
	// UserAgent defaults to "dcsjobs/1".
	UserAgent string
	// Observe, when set, is called after every HTTP exchange (for metrics).
	// It must be fast and must not retain the CallInfo's Err beyond the call.
	Observe func(CallInfo)
	// Wait, when set, is called before every HTTP exchange, e.g. to take a
	// token from a rate limit shared by several processes. An error aborts the
	// call; return a *ThrottleError to make the caller back off without
	// counting a failure.
	Wait func(ctx context.Context, op string) error
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// CallInfo describes one HTTP exchange with DCS, for Config.Observe.
type CallInfo struct {
	Op       string
	Status   int // 0 when no response arrived
	Class    Class
	Code     string
	Duration time.Duration
	Err      error
}

// Client talks to the DCS API. It is safe for concurrent use.
type Client struct {
	base      string
	projectID string
	auth      Authenticator
	hc        *http.Client
	timeout   time.Duration
	maxBody   int64
	userAgent string
	observe   func(CallInfo)
	wait      func(context.Context, string) error
	now       func() time.Time
}

var defaultHTTPClient = &http.Client{Transport: newTransport()}

func newTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 64
	t.MaxIdleConnsPerHost = 16
	t.IdleConnTimeout = 90 * time.Second
	t.ResponseHeaderTimeout = 60 * time.Second
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	return t
}

var regionRE = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

func validateRegion(r string) error {
	if r == "" {
		return errors.New("region is empty")
	}
	if !regionRE.MatchString(r) {
		return fmt.Errorf("region %q is invalid: expected lower-case words joined by '-', e.g. ap-southeast-1", r)
	}
	return nil
}

// EndpointForRegion returns the public DCS endpoint of a region.
func EndpointForRegion(region string) (string, error) {
	if err := validateRegion(region); err != nil {
		return "", err
	}
	return "https://dcs." + region + ".myhuaweicloud.com", nil
}

// New validates cfg and returns a Client. Errors name the field at fault.
func New(cfg Config) (*Client, error) {
	base := strings.TrimRight(cfg.Endpoint, "/")
	if base == "" {
		if cfg.Region == "" {
			return nil, errors.New("dcsapi: Endpoint or Region is required")
		}
		var err error
		if base, err = EndpointForRegion(cfg.Region); err != nil {
			return nil, fmt.Errorf("dcsapi: Region: %w", err)
		}
	} else {
		u, err := url.Parse(base)
		if err != nil {
			return nil, fmt.Errorf("dcsapi: Endpoint %q: %w", cfg.Endpoint, err)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return nil, fmt.Errorf("dcsapi: Endpoint %q: scheme must be http or https", cfg.Endpoint)
		}
		if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("dcsapi: Endpoint %q: want scheme://host[:port][/prefix] without user, query or fragment", cfg.Endpoint)
		}
	}
	if err := ValidateID("ProjectID", cfg.ProjectID); err != nil {
		return nil, fmt.Errorf("dcsapi: %w", err)
	}
	if cfg.Auth == nil {
		return nil, errors.New("dcsapi: Auth is required (AKSK, Token or IAMPassword)")
	}
	c := &Client{base: base, projectID: cfg.ProjectID, auth: cfg.Auth, hc: cfg.HTTPClient,
		timeout: cfg.Timeout, maxBody: cfg.MaxResponseBytes, userAgent: cfg.UserAgent,
		observe: cfg.Observe, wait: cfg.Wait, now: cfg.Now}
	if c.hc == nil {
		c.hc = defaultHTTPClient
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.maxBody <= 0 {
		c.maxBody = DefaultMaxResponseBytes
	}
	if c.userAgent == "" {
		c.userAgent = DefaultUserAgent
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

// Endpoint returns the base URL in use.
func (c *Client) Endpoint() string { return c.base }

// ProjectID returns the project in use.
func (c *Client) ProjectID() string { return c.projectID }

// path joins escaped segments under /v2/{project_id}.
func (c *Client) path(segs ...string) string {
	var b strings.Builder
	b.WriteString("/v2/")
	b.WriteString(url.PathEscape(c.projectID))
	for _, s := range segs {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

// do performs one API call: in (if not nil) is sent as JSON, a 2xx body is
// decoded into out. A 401 with a Refresher authenticator is retried once.
func (c *Client) do(ctx context.Context, op, method, path string, query url.Values, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("dcs %s: encode request: %w", op, err)
		}
	}
	err := c.once(ctx, op, method, path, query, body, out)
	if r, ok := c.auth.(Refresher); ok && Classify(err) == ClassAuth {
		r.Invalidate()
		err = c.once(ctx, op, method, path, query, body, out)
	}
	return err
}

func (c *Client) once(ctx context.Context, op, method, path string, query url.Values, body []byte, out any) (err error) {
	if c.wait != nil {
		if err := c.wait(ctx, op); err != nil {
			return fmt.Errorf("dcs %s: %w: %w", op, ErrNotSent, err)
		}
	}
	start := c.now()
	status := 0
	defer func() {
		if c.observe != nil {
			c.observe(CallInfo{Op: op, Status: status, Class: Classify(err), Code: ErrorCode(err),
				Duration: c.now().Sub(start), Err: err})
		}
	}()
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return fmt.Errorf("dcs %s: %w", op, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json;charset=UTF-8")
	} else {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("X-Project-Id", c.projectID)
	if err := c.auth.Authenticate(ctx, req, body); err != nil {
		return fmt.Errorf("dcs %s: authenticate: %w: %w", op, ErrNotSent, err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("dcs %s: %w", op, err)
	}
	defer resp.Body.Close()
	status = resp.StatusCode
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBody+1))
	if err != nil {
		return fmt.Errorf("dcs %s: read response: %w", op, err)
	}
	if int64(len(data)) > c.maxBody {
		return &BodyTooLargeError{Op: op, Limit: c.maxBody}
	}
	if resp.StatusCode/100 != 2 {
		return redact(parseAPIError(op, resp.StatusCode, resp.Header, data, c.now()), c.auth)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return &DecodeError{Op: op, RequestID: resp.Header.Get("X-Request-Id"), Err: err, Excerpt: excerptN(data, 40)}
	}
	return nil
}

// secretHolder is implemented by authenticators whose secrets could be
// echoed back by the gateway (its signature errors quote the canonical
// request, signed headers included).
type secretHolder interface {
	secrets() []string
}

// redact removes the authenticator's secrets from an API error's texts.
func redact(e *APIError, auth Authenticator) *APIError {
	h, ok := auth.(secretHolder)
	if !ok {
		return e
	}
	for _, s := range h.secrets() {
		if len(s) < 4 {
			continue
		}
		e.Message = strings.ReplaceAll(e.Message, s, redacted)
		e.ExtMessage = strings.ReplaceAll(e.ExtMessage, s, redacted)
	}
	return e
}

func excerptN(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}
