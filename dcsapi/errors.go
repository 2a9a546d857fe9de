package dcsapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// APIError is any non-2xx answer from DCS, the API gateway in front of it, or
// IAM. It is parsed from the three body shapes seen in the wild:
//
//	DCS v2:   {"error_code":"DCS.4957","error_msg":"...","error_ext_msg":null}
//	gateway:  {"error_code":"APIGW.0308","error_msg":"...","request_id":"..."}
//	legacy:   {"error":{"code":"111404022","message":"..."}}  (also DCS v1 and IAM)
//
// A body that is none of these leaves Code empty and puts a short, printable
// excerpt of the body in Message.
type APIError struct {
	// Op is the client operation, e.g. "ScanClients".
	Op string
	// Status is the HTTP status code.
	Status int
	// Code is the service error code, e.g. "DCS.3022" or "APIGW.0308".
	Code string
	// Message is error_msg (or error.message).
	Message string
	// ExtMessage is error_ext_msg, when the service sent one.
	ExtMessage string
	// RequestID is the X-Request-Id header, or the body's request_id.
	RequestID string
	// RetryAfter is the delay advised by a Retry-After header (0 when absent).
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "dcs %s: HTTP %d", e.Op, e.Status)
	if e.Code != "" {
		b.WriteString(" ")
		b.WriteString(e.Code)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.ExtMessage != "" {
		b.WriteString(" (")
		b.WriteString(e.ExtMessage)
		b.WriteString(")")
	}
	if e.RequestID != "" {
		b.WriteString(" [request id ")
		b.WriteString(e.RequestID)
		b.WriteString("]")
	}
	return b.String()
}

// maxErrorExcerpt bounds how much of an unparseable error body ends up in
// Message; maxErrorMessage bounds a parsed message (the gateway echoes its
// canonical request in signature errors, which is worth keeping).
const (
	maxErrorExcerpt = 200
	maxErrorMessage = 1000
)

// parseAPIError builds an APIError from a response status, headers and body.
func parseAPIError(op string, status int, h http.Header, body []byte, now time.Time) *APIError {
	e := &APIError{Op: op, Status: status, RequestID: h.Get("X-Request-Id")}
	e.RetryAfter = parseRetryAfter(h.Get("Retry-After"), now)
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		e.Message = excerpt(body)
		return e
	}
	fillFromObject(e, m, 0)
	if e.Code == "" && e.Message == "" {
		e.Message = excerpt(body)
	}
	e.Code = clean(e.Code, 64)
	e.Message = clean(e.Message, maxErrorMessage)
	e.ExtMessage = clean(e.ExtMessage, maxErrorMessage)
	e.RequestID = clean(e.RequestID, 128)
	return e
}

// fillFromObject reads error_code/error_msg first, then code/message, then
// looks one level into nested objects (the legacy {"error":{...}} shape).
func fillFromObject(e *APIError, m map[string]json.RawMessage, depth int) {
	str := func(keys ...string) string {
		for _, k := range keys {
			if raw, ok := m[k]; ok {
				var s FlexString
				if json.Unmarshal(raw, &s) == nil && s != "" {
					return string(s)
				}
			}
		}
		return ""
	}
	if e.Code == "" {
		e.Code = str("error_code", "code")
	}
	if e.Message == "" {
		e.Message = str("error_msg", "message", "error_message")
	}
	if e.ExtMessage == "" {
		e.ExtMessage = str("error_ext_msg", "ext_message")
	}
	if e.RequestID == "" {
		e.RequestID = str("request_id")
	}
	if depth > 0 || (e.Code != "" && e.Message != "") {
		return
	}
	for _, k := range []string{"error", "err"} {
		var inner map[string]json.RawMessage
		if raw, ok := m[k]; ok && json.Unmarshal(raw, &inner) == nil && inner != nil {
			fillFromObject(e, inner, depth+1)
			return
		}
	}
}

func excerpt(body []byte) string { return clean(string(body), maxErrorExcerpt) }

// clean trims s, cuts it to n bytes (on a rune boundary, marked "...") and
// replaces control characters, so that service text is safe in one log line.
func clean(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = s[:n]
		for !utf8.ValidString(s) && len(s) > 0 {
			s = s[:len(s)-1]
		}
		s += "..."
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// parseRetryAfter reads delta-seconds or an HTTP date; 0 when absent or bad.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil && n >= 0 {
		return time.Duration(n * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// Class is how a caller should react to an error.
type Class int

const (
	// ClassNone is the class of a nil error.
	ClassNone Class = iota
	// ClassThrottled: the gateway rejected the call for rate (HTTP 429,
	// APIG(W).0308). Retry after RetryAfter(err), without counting a failure.
	ClassThrottled
	// ClassTransient: 5xx, network errors, timeouts, undecodable 2xx bodies and
	// the "instance busy" codes (BusyCodes). Retry with backoff.
	ClassTransient
	// ClassAuth: HTTP 401. Credentials are wrong or expired; retrying helps only
	// after they change (a token is refreshed by the client itself, once).
	ClassAuth
	// ClassPermanent: every other 4xx (instance missing DCS.3022, bad node
	// DCS.3053, not supported DCS.4848, 403 ...) and invalid arguments. Do not retry.
	ClassPermanent
)

func (c Class) String() string {
	switch c {
	case ClassNone:
		return "none"
	case ClassThrottled:
		return "throttled"
	case ClassTransient:
		return "transient"
	case ClassAuth:
		return "auth"
	case ClassPermanent:
		return "permanent"
	}
	return "class(" + strconv.Itoa(int(c)) + ")"
}

// ThrottleCodes are the gateway's throttling codes.
var ThrottleCodes = map[string]bool{"APIG.0308": true, "APIGW.0308": true}

// BusyCodes are 4xx codes that mean "not now": the instance is busy with
// another operation or in a passing state. Terraform's provider retries the same
// set (reference §2.3); DCS.4957 is what a second scan of a node gets while one
// runs. Numeric codes are the legacy equivalents.
var BusyCodes = map[string]bool{
	"DCS.4957": true, "DCS.4017": true, "DCS.4026": true, "DCS.4049": true,
	"DCS.4069": true, "DCS.4096": true, "DCS.4097": true, "DCS.4104": true,
	"DCS.4111": true, "DCS.4113": true, "DCS.4114": true, "DCS.4115": true,
	"DCS.4116": true, "DCS.4117": true, "DCS.4118": true, "DCS.4120": true,
	"DCS.4121": true, "DCS.4231": true, "DCS.4975": true, "CBC.99003651": true,
	"111400017": true, "111400026": true, "111400069": true,
}

// Classify sorts err into a Class. Unknown non-API errors are transient when
// they look like I/O (network errors, timeouts, truncated or undecodable bodies)
// and permanent otherwise (e.g. an invalid argument rejected before sending).
func Classify(err error) Class {
	if err == nil {
		return ClassNone
	}
	var ae *APIError
	if errors.As(err, &ae) {
		switch {
		case ae.Status == http.StatusTooManyRequests || ThrottleCodes[ae.Code]:
			return ClassThrottled
		case ae.Status == http.StatusUnauthorized:
			return ClassAuth
		case ae.Status >= 500:
			return ClassTransient
		case BusyCodes[ae.Code]:
			return ClassTransient
		case ae.Status == http.StatusRequestTimeout:
			return ClassTransient
		default:
			return ClassPermanent
		}
	}
	var de *DecodeError
	var ne net.Error
	var te *ThrottleError
	switch {
	case errors.As(err, &te):
		return ClassThrottled
	case errors.Is(err, ErrNotSent):
		// Failed before sending (a budget backend, an IAM token fetch, ...):
		// nothing reached DCS, so trying again is safe.
		return ClassTransient
	case errors.As(err, &de):
		return ClassTransient
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return ClassTransient
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return ClassTransient
	case errors.As(err, &ne):
		return ClassTransient
	case errors.Is(err, ErrSnapshotChanged):
		return ClassTransient
	}
	return ClassPermanent
}

// IsThrottled reports whether err is a throttling rejection.
func IsThrottled(err error) bool { return Classify(err) == ClassThrottled }

// IsTransient reports whether err is worth retrying with backoff.
func IsTransient(err error) bool { return Classify(err) == ClassTransient }

// IsAuth reports whether err is an authentication failure (HTTP 401).
func IsAuth(err error) bool { return Classify(err) == ClassAuth }

// IsPermanent reports whether retrying err cannot help.
func IsPermanent(err error) bool { return Classify(err) == ClassPermanent }

// RetryAfter returns the delay advised by the service (Retry-After) and
// whether one was given.
func RetryAfter(err error) (time.Duration, bool) {
	var ae *APIError
	if errors.As(err, &ae) && ae.RetryAfter > 0 {
		return ae.RetryAfter, true
	}
	var te *ThrottleError
	if errors.As(err, &te) && te.Delay > 0 {
		return te.Delay, true
	}
	return 0, false
}

// ErrNotSent wraps errors that happened before a request was sent (the Wait
// hook, authentication): DCS did not see the call. Such errors are transient.
var ErrNotSent = errors.New("request not sent")

// ThrottleError is a call held back on the client side, before it was sent,
// typically by a rate limit shared between workers (Config.Wait). It is
// ClassThrottled, and RetryAfter returns Delay.
type ThrottleError struct {
	Op     string
	Delay  time.Duration
	Reason string
}

func (e *ThrottleError) Error() string {
	return fmt.Sprintf("dcs %s: held back by %s; retry in %v", e.Op, e.Reason, e.Delay)
}

// ErrorCode returns the service error code of err, or "" when it has none.
func ErrorCode(err error) string {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

// jobUnknownCodes answer ShowJobInfo for a job id the endpoint does not know.
// Which one the real service uses is UNCONFIRMED (reference §2.1, §7), so any
// 404 counts too.
var jobUnknownCodes = map[string]bool{
	"DCS.4070": true, "111400070": true, // invalid task id
	"DCS.4094": true, "111400094": true, // the system is not support dcs job
	"DCS.5101": true,
}

// IsJobNotFound reports whether err says that /jobs/{job_id} does not know
// the job. Whether scan jobs are visible there is UNCONFIRMED, so callers
// should fall back to another completion signal on this error.
func IsJobNotFound(err error) bool {
	var ae *APIError
	if !errors.As(err, &ae) || ae.Op != OpShowJobInfo {
		return false
	}
	return ae.Status == http.StatusNotFound || (ae.Status < 500 && jobUnknownCodes[ae.Code])
}

// DecodeError is a 2xx response whose body could not be decoded (truncated,
// not JSON, wrong shape). It is transient: proxies and overloaded gateways
// produce such bodies.
type DecodeError struct {
	Op        string
	RequestID string
	Err       error
	Excerpt   string
}

func (e *DecodeError) Error() string {
	s := fmt.Sprintf("dcs %s: cannot decode response: %v", e.Op, e.Err)
	if e.Excerpt != "" {
		s += fmt.Sprintf(" (body starts %q)", e.Excerpt)
	}
	if e.RequestID != "" {
		s += " [request id " + e.RequestID + "]"
	}
	return s
}

func (e *DecodeError) Unwrap() error { return e.Err }

// BodyTooLargeError is a response larger than Config.MaxResponseBytes. The
// client stops reading at the cap.
type BodyTooLargeError struct {
	Op    string
	Limit int64
}

func (e *BodyTooLargeError) Error() string {
	return fmt.Sprintf("dcs %s: response body exceeds the %d-byte limit (Config.MaxResponseBytes)", e.Op, e.Limit)
}
