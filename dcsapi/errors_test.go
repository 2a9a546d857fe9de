package dcsapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Each file of testdata/errors is one literal error body; the table says what
// parsing and classification must make of it.
func TestParseAndClassifyErrorBodies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file       string
		status     int
		retryAfter string
		code       string
		msg        string // substring
		ext        string
		requestID  string
		class      Class
		wantDelay  time.Duration
	}{
		{file: "dcs_4957_task_state.json", status: 400, code: "DCS.4957", msg: "not allowed when the task", class: ClassTransient},
		{file: "dcs_3022_instance_missing.json", status: 404, code: "DCS.3022", msg: "does not exist", class: ClassPermanent},
		{file: "dcs_3053_bad_node.json", status: 400, code: "DCS.3053", msg: "Incorrect node ID.", class: ClassPermanent},
		{file: "dcs_4848_not_supported.json", status: 400, code: "DCS.4848", msg: "not supported", ext: "engine version 3.0", class: ClassPermanent},
		{file: "dcs_4049_not_running.json", status: 400, code: "DCS.4049", msg: "not running", class: ClassTransient},
		{file: "dcs_5000_internal.json", status: 500, code: "DCS.5000", msg: "Internal service error.", class: ClassTransient},
		{file: "dcs_1002_token_expired.json", status: 401, code: "DCS.1002", msg: "Token expired.", class: ClassAuth},
		{file: "dcs_2007_policy_deny.json", status: 403, code: "DCS.2007", msg: "Policy does not allow", class: ClassPermanent},
		{file: "dcs_numeric_111400063.json", status: 400, code: "111400063", msg: "Invalid {0}", class: ClassPermanent},
		{file: "dcs_numeric_111400017_busy.json", status: 400, code: "111400017", msg: "still running", class: ClassTransient},
		{file: "gateway_apig_0308_throttled.json", status: 429, code: "APIG.0308", msg: "limit:5,time:1 minute",
			requestID: "914a39d6c2b9e8f3a7e5d1c4b3a29180", class: ClassThrottled},
		{file: "gateway_apigw_0308_throttled.json", status: 429, retryAfter: "7", code: "APIGW.0308", msg: "policy ip",
			requestID: "0a7c1e2b3d4f5a6b7c8d9e0f1a2b3c4d", class: ClassThrottled, wantDelay: 7 * time.Second},
		{file: "gateway_0301_bad_signature.json", status: 401, code: "APIGW.0301", msg: "verify aksk signature fail", class: ClassAuth},
		{file: "gateway_0307_token_update.json", status: 401, code: "APIGW.0307", msg: "must be updated", class: ClassAuth},
		{file: "gateway_0101_no_api.json", status: 404, code: "APIGW.0101", msg: "does not exist", class: ClassPermanent},
		{file: "gateway_0202_backend_unavailable.json", status: 502, code: "APIGW.0202", msg: "Backend unavailable", class: ClassTransient},
		{file: "gateway_0802_region_forbidden.json", status: 403, code: "APIGW.0802", msg: "forbidden", class: ClassPermanent},
		{file: "legacy_v1_instance_missing.json", status: 404, code: "111404022", msg: "does not exist", class: ClassPermanent},
		{file: "legacy_flat_111400086.json", status: 400, code: "111400086", msg: "only master standby", class: ClassPermanent},
		{file: "iam_1101_bad_password.json", status: 401, code: "1101", msg: "password is wrong", class: ClassAuth},
		{file: "html_502_proxy.html", status: 502, msg: "502 Bad Gateway", class: ClassTransient},
		{file: "empty_503.txt", status: 503, class: ClassTransient},
		{file: "nulls_500.json", status: 500, msg: `{"error_code":null`, class: ClassTransient},
	}
	files, _ := filepath.Glob("testdata/errors/*")
	if len(files) != len(tests) {
		t.Errorf("testdata/errors has %d files, the table %d: every file needs a row", len(files), len(tests))
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("testdata/errors", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			h := http.Header{"X-Request-Id": {"hdr-request-id"}}
			if tc.retryAfter != "" {
				h.Set("Retry-After", tc.retryAfter)
			}
			e := parseAPIError(OpListClients, tc.status, h, body, time.Now())
			if e.Status != tc.status || e.Code != tc.code || e.ExtMessage != tc.ext {
				t.Errorf("got status %d code %q ext %q, want %d %q %q", e.Status, e.Code, e.ExtMessage, tc.status, tc.code, tc.ext)
			}
			if !strings.Contains(e.Message, tc.msg) {
				t.Errorf("message %q does not contain %q", e.Message, tc.msg)
			}
			// The header wins over the body's request_id.
			if e.RequestID != "hdr-request-id" {
				t.Errorf("request id %q, want the X-Request-Id header", e.RequestID)
			}
			var wrapped error = fmt.Errorf("step: %w", e)
			if got := Classify(wrapped); got != tc.class {
				t.Errorf("Classify = %v, want %v", got, tc.class)
			}
			if d, ok := RetryAfter(wrapped); d != tc.wantDelay || ok != (tc.wantDelay > 0) {
				t.Errorf("RetryAfter = %v %v, want %v", d, ok, tc.wantDelay)
			}
			if s := e.Error(); !strings.Contains(s, "ListClients") || !strings.Contains(s, fmt.Sprint(tc.status)) ||
				(tc.code != "" && !strings.Contains(s, tc.code)) {
				t.Errorf("Error() = %q lacks op, status or code", s)
			}
			if strings.ContainsAny(e.Message, "\n\r\t") || len(e.Message) > maxErrorMessage+3 {
				t.Errorf("message not sanitized: %q", e.Message)
			}
			// Without the header, the gateway body's request_id is used.
			if tc.requestID != "" {
				if e2 := parseAPIError(OpListClients, tc.status, http.Header{}, body, time.Now()); e2.RequestID != tc.requestID {
					t.Errorf("body request_id = %q, want %q", e2.RequestID, tc.requestID)
				}
			}
		})
	}
}

func TestRetryAfterForms(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                              0,
		"3":                             3 * time.Second,
		"0.5":                           500 * time.Millisecond,
		"-1":                            0,
		"soon":                          0,
		"Sat, 28 Nov 2026 10:00:30 GMT": 30 * time.Second,
		"Sat, 28 Nov 2026 09:00:00 GMT": 0,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestClassifyNonAPIErrors(t *testing.T) {
	t.Parallel()
	var _ net.Error = timeoutErr{}
	tests := []struct {
		name string
		err  error
		want Class
	}{
		{"nil", nil, ClassNone},
		{"deadline", fmt.Errorf("dcs X: %w", context.DeadlineExceeded), ClassTransient},
		{"canceled", context.Canceled, ClassTransient},
		{"net timeout", &net.OpError{Op: "dial", Err: timeoutErr{}}, ClassTransient},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, ClassTransient},
		{"unexpected EOF", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), ClassTransient},
		{"decode", &DecodeError{Op: OpListClients, Err: errors.New("bad")}, ClassTransient},
		{"snapshot changed", fmt.Errorf("x: %w", ErrSnapshotChanged), ClassTransient},
		{"body too large", &BodyTooLargeError{Op: OpListClients, Limit: 10}, ClassPermanent},
		{"invalid argument", ValidateID("node_id", "a/b"), ClassPermanent},
		{"408", &APIError{Status: 408}, ClassTransient},
		{"429 without code", &APIError{Status: 429}, ClassThrottled},
		{"0308 on a 403", &APIError{Status: 403, Code: "APIGW.0308"}, ClassThrottled},
		{"401", &APIError{Status: 401, Code: "DCS.1001"}, ClassAuth},
		{"403", &APIError{Status: 403, Code: "DCS.3003"}, ClassPermanent},
		{"DCS.4957", &APIError{Status: 400, Code: "DCS.4957"}, ClassTransient},
	}
	for _, tc := range tests {
		if got := Classify(tc.err); got != tc.want {
			t.Errorf("%s: Classify = %v, want %v", tc.name, got, tc.want)
		}
	}
	if !IsThrottled(&APIError{Status: 429}) || !IsTransient(context.DeadlineExceeded) ||
		!IsAuth(&APIError{Status: 401}) || !IsPermanent(&APIError{Status: 404}) {
		t.Error("helpers disagree with Classify")
	}
}

func TestIsJobNotFound(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&APIError{Op: OpShowJobInfo, Status: 404, Code: "DCS.5101"}, true},
		{&APIError{Op: OpShowJobInfo, Status: 404, Code: "APIGW.0101"}, true},
		{&APIError{Op: OpShowJobInfo, Status: 400, Code: "DCS.4094"}, true},
		{&APIError{Op: OpShowJobInfo, Status: 400, Code: "111400070"}, true},
		{&APIError{Op: OpShowJobInfo, Status: 400, Code: "DCS.4062"}, false},
		{&APIError{Op: OpShowJobInfo, Status: 500, Code: "DCS.5000"}, false},
		{&APIError{Op: OpListClients, Status: 404, Code: "DCS.3022"}, false},
		{errors.New("x"), false},
	} {
		if got := IsJobNotFound(tc.err); got != tc.want {
			t.Errorf("IsJobNotFound(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestThrottleErrorAndWaitHook(t *testing.T) {
	t.Parallel()
	var called []string
	calls := 0
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) { calls++ }, func(cfg *Config) {
		cfg.Wait = func(_ context.Context, op string) error {
			called = append(called, op)
			return &ThrottleError{Op: op, Delay: 3 * time.Second, Reason: "API budget"}
		}
	})
	_, err := c.ShowJobInfo(context.Background(), "j1")
	if !IsThrottled(err) || calls != 0 || len(called) != 1 || called[0] != OpShowJobInfo {
		t.Fatalf("err %v, server calls %d, wait calls %v", err, calls, called)
	}
	if d, ok := RetryAfter(err); !ok || d != 3*time.Second {
		t.Errorf("RetryAfter = %v %v", d, ok)
	}
}

func TestNotSentErrorsAreTransient(t *testing.T) {
	t.Parallel()
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {}, func(cfg *Config) {
		cfg.Wait = func(context.Context, string) error { return errors.New("redis: connection pool timeout") }
	})
	_, err := c.ShowJobInfo(context.Background(), "j1")
	if !errors.Is(err, ErrNotSent) || !IsTransient(err) {
		t.Fatalf("budget backend error: %v (%v)", err, Classify(err))
	}
	c2, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {}, func(cfg *Config) {
		cfg.Auth = &Token{} // empty token: fails before sending
	})
	if _, err := c2.ShowJobInfo(context.Background(), "j1"); !errors.Is(err, ErrNotSent) {
		t.Fatalf("auth error: %v", err)
	}
}

func TestGatewayEchoOfSecretsIsRedacted(t *testing.T) {
	t.Parallel()
	const tok = "security-token-value-123"
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(401)
		_, _ = io.WriteString(w, `{"error_code":"APIGW.0301","error_msg":"verify aksk signature fail, canonicalRequest:GET|/x/||x-security-token:`+
			r.Header.Get("X-Security-Token")+`|","request_id":"r"}`)
	}, func(cfg *Config) {
		cfg.Auth = &AKSK{AccessKey: "AK", SecretKey: "SK-secret", SecurityToken: tok}
	})
	_, err := c.ShowJobInfo(context.Background(), "j1")
	if err == nil || strings.Contains(err.Error(), tok) || !strings.Contains(err.Error(), "x-security-token:REDACTED") {
		t.Fatalf("error %v", err)
	}
}
