// Package signer implements Huawei Cloud's "SDK-HMAC-SHA256" AK/SK request
// signing, as done by the official SDKs and verified by the API gateway.
//
// Both sides live here: Sign for clients and Verify for the DCS simulator, so
// the exact canonicalisation rules are written once and pinned by the three
// published test vectors (see signer_test.go).
//
// The algorithm, in short:
//
//	CanonicalRequest = Method \n CanonicalURI \n CanonicalQuery \n CanonicalHeaders \n SignedHeaders \n HexSHA256(body)
//	StringToSign     = "SDK-HMAC-SHA256" \n X-Sdk-Date \n HexSHA256(CanonicalRequest)
//	Signature        = Hex(HMAC-SHA256(SK, StringToSign))
//	Authorization    = SDK-HMAC-SHA256 Access=AK, SignedHeaders=h1;h2, Signature=sig
//
// It is written by hand because no maintained Go module outside the (very large)
// official SDK exposes it, and the simulator needs the verifying half, which the
// SDK does not have.
package signer

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

const (
	// Algorithm is the scheme name in the Authorization header and the first
	// line of the string to sign.
	Algorithm = "SDK-HMAC-SHA256"
	// DateFormat is the layout of X-Sdk-Date (UTC).
	DateFormat = "20060102T150405Z"
	// HeaderDate carries the signing time; it is always signed.
	HeaderDate = "X-Sdk-Date"
	// HeaderContentSHA256, when present, replaces the body hash.
	HeaderContentSHA256 = "X-Sdk-Content-Sha256"
	// HeaderAuthorization carries the signature.
	HeaderAuthorization = "Authorization"
	// DefaultWindow is how far X-Sdk-Date may be from the gateway clock.
	DefaultWindow = 15 * time.Minute

	emptyBodyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

// Escape percent-encodes s the way the SDKs do: A-Z a-z 0-9 _ - ~ . stay,
// everything else becomes %XX with upper-case hex (a space is %20).
func Escape(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '_' || c == '-' || c == '~' || c == '.' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

// CanonicalURI turns an escaped request path into its canonical form: each
// segment decoded then re-encoded with Escape, and a trailing "/" appended.
func CanonicalURI(escapedPath string) string {
	segs := strings.Split(escapedPath, "/")
	for i, s := range segs {
		if u, err := url.PathUnescape(s); err == nil {
			s = u
		}
		segs[i] = Escape(s)
	}
	p := strings.Join(segs, "/")
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p
}

// CanonicalQuery sorts by decoded key, then by decoded value, and encodes
// both with Escape. An empty value is still written "k=".
func CanonicalQuery(q url.Values) string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		vs := append([]string(nil), q[k]...)
		sort.Strings(vs)
		for _, v := range vs {
			parts = append(parts, Escape(k)+"="+Escape(v))
		}
	}
	return strings.Join(parts, "&")
}

// Request is the signing view of an HTTP request.
type Request struct {
	Method      string
	EscapedPath string
	Query       url.Values
	// Headers maps lower-case names to values; "host" must be present when
	// it is signed.
	Headers map[string]string
	// Signed lists the lower-case names of the signed headers.
	Signed []string
	// BodyHash is the lower-case hex SHA-256 of the body (or the value of
	// X-Sdk-Content-Sha256).
	BodyHash string
}

// CanonicalRequest builds the canonical request string.
func (r Request) CanonicalRequest() string {
	signed := sortedLower(r.Signed)
	var b strings.Builder
	b.WriteString(strings.ToUpper(r.Method))
	b.WriteByte('\n')
	b.WriteString(CanonicalURI(r.EscapedPath))
	b.WriteByte('\n')
	b.WriteString(CanonicalQuery(r.Query))
	b.WriteByte('\n')
	for _, h := range signed {
		b.WriteString(h)
		b.WriteByte(':')
		b.WriteString(strings.TrimSpace(r.Headers[h]))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signed, ";"))
	b.WriteByte('\n')
	b.WriteString(r.BodyHash)
	return b.String()
}

// StringToSign builds the string that is HMAC'd.
func StringToSign(date, canonicalRequest string) string {
	sum := sha256.Sum256([]byte(canonicalRequest))
	return Algorithm + "\n" + date + "\n" + hex.EncodeToString(sum[:])
}

// Signature is hex(HMAC-SHA256(sk, stringToSign)); there is no key derivation.
func Signature(sk, stringToSign string) string {
	m := hmac.New(sha256.New, []byte(sk))
	m.Write([]byte(stringToSign))
	return hex.EncodeToString(m.Sum(nil))
}

// Authorization formats the Authorization header value.
func Authorization(ak string, signed []string, signature string) string {
	return fmt.Sprintf("%s Access=%s, SignedHeaders=%s, Signature=%s",
		Algorithm, ak, strings.Join(sortedLower(signed), ";"), signature)
}

// BodyHash is the lower-case hex SHA-256 of body.
func BodyHash(body []byte) string {
	if len(body) == 0 {
		return emptyBodyHash
	}
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// DefaultSignedHeaders are signed by Sign when present on the request, in
// addition to x-sdk-date and host. Content-Type and User-Agent are left out on
// purpose: proxies rewrite them, and the gateway only requires x-sdk-date.
var DefaultSignedHeaders = []string{"host", "x-sdk-date", "x-project-id", "x-security-token"}

// Sign sets X-Sdk-Date to now (never reusing a previous value) and the
// Authorization header on req. body must be the exact bytes that will be sent.
// signed lists lower-case header names to sign when present; nil means
// DefaultSignedHeaders. x-sdk-date is always signed.
func Sign(req *http.Request, body []byte, ak, sk string, now time.Time, signed []string) {
	if signed == nil {
		signed = DefaultSignedHeaders
	}
	date := now.UTC().Format(DateFormat)
	req.Header.Set(HeaderDate, date)
	headers := map[string]string{}
	var names []string
	for _, h := range signed {
		h = strings.ToLower(h)
		v, ok := headerValue(req, h)
		if !ok || containsString(names, h) {
			continue
		}
		headers[h] = v
		names = append(names, h)
	}
	bodyHash := req.Header.Get(HeaderContentSHA256)
	if bodyHash == "" {
		bodyHash = BodyHash(body)
	}
	sr := Request{Method: req.Method, EscapedPath: req.URL.EscapedPath(), Query: req.URL.Query(),
		Headers: headers, Signed: names, BodyHash: bodyHash}
	sig := Signature(sk, StringToSign(date, sr.CanonicalRequest()))
	req.Header.Set(HeaderAuthorization, Authorization(ak, names, sig))
}

func headerValue(req *http.Request, lower string) (string, bool) {
	if lower == "host" {
		if req.Host != "" {
			return req.Host, true
		}
		if req.URL != nil && req.URL.Host != "" {
			return req.URL.Host, true
		}
		return "", false
	}
	vs, ok := req.Header[http.CanonicalHeaderKey(lower)]
	if !ok || len(vs) == 0 {
		// Header maps built by hand may hold non-canonical keys.
		for k, v := range req.Header {
			if strings.ToLower(k) == lower && len(v) > 0 {
				return v[0], true
			}
		}
		return "", false
	}
	return vs[0], true
}

func sortedLower(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = strings.ToLower(s)
	}
	sort.Strings(out)
	return out
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Credential is what a parsed Authorization header carries.
type Credential struct {
	AccessKey     string
	SignedHeaders []string
	Signature     string
}

// ParseAuthorization parses "SDK-HMAC-SHA256 Access=AK, SignedHeaders=a;b, Signature=hex".
func ParseAuthorization(h string) (Credential, error) {
	var c Credential
	rest, ok := strings.CutPrefix(h, Algorithm+" ")
	if !ok {
		return c, errors.New("authorization header does not start with " + Algorithm)
	}
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return c, fmt.Errorf("authorization header: malformed part %q", part)
		}
		switch k {
		case "Access":
			c.AccessKey = v
		case "SignedHeaders":
			if v != "" {
				c.SignedHeaders = strings.Split(v, ";")
			}
		case "Signature":
			c.Signature = v
		}
	}
	switch {
	case c.AccessKey == "":
		return c, errors.New("authorization header: no Access")
	case c.Signature == "":
		return c, errors.New("authorization header: no Signature")
	case !containsString(c.SignedHeaders, "x-sdk-date"):
		return c, errors.New("authorization header: SignedHeaders must include x-sdk-date")
	}
	return c, nil
}

// Verification errors. The simulator maps each to an APIGW.0301 message like
// the real gateway's.
var (
	ErrUnknownAccessKey  = errors.New("ak not exist")
	ErrSignatureMismatch = errors.New("verify aksk signature fail")
	ErrSignatureExpired  = errors.New("signature expired")
)

// Verify checks a signed request the way the gateway does: any signed-header
// set that includes x-sdk-date, X-Sdk-Date within window of now, and the body
// hash (unless X-Sdk-Content-Sha256 is set, whose value is then used).
// secretFor returns the SK of an AK. On a mismatch the error text includes the
// canonical request with "\n" replaced by "|", as the real gateway echoes it.
func Verify(req *http.Request, body []byte, secretFor func(ak string) (string, bool), now time.Time, window time.Duration) (ak string, err error) {
	c, err := ParseAuthorization(req.Header.Get(HeaderAuthorization))
	if err != nil {
		return "", err
	}
	sk, ok := secretFor(c.AccessKey)
	if !ok {
		return c.AccessKey, fmt.Errorf("%w: ak %s not exist", ErrUnknownAccessKey, c.AccessKey)
	}
	date := req.Header.Get(HeaderDate)
	t, err := time.Parse(DateFormat, date)
	if err != nil {
		return c.AccessKey, fmt.Errorf("%w: bad X-Sdk-Date %q", ErrSignatureMismatch, date)
	}
	if d := now.Sub(t); d > window || d < -window {
		return c.AccessKey, fmt.Errorf("%w, signature time:%s,server time:%s",
			ErrSignatureExpired, date, now.UTC().Format(DateFormat))
	}
	headers := map[string]string{}
	for _, h := range c.SignedHeaders {
		v, _ := headerValue(req, strings.ToLower(h))
		headers[strings.ToLower(h)] = v
	}
	bodyHash := req.Header.Get(HeaderContentSHA256)
	if bodyHash == "" {
		bodyHash = BodyHash(body)
	}
	sr := Request{Method: req.Method, EscapedPath: req.URL.EscapedPath(), Query: req.URL.Query(),
		Headers: headers, Signed: c.SignedHeaders, BodyHash: bodyHash}
	canonical := sr.CanonicalRequest()
	want := Signature(sk, StringToSign(date, canonical))
	if !hmac.Equal([]byte(want), []byte(strings.ToLower(c.Signature))) {
		return c.AccessKey, fmt.Errorf("%w, canonicalRequest:%s", ErrSignatureMismatch,
			strings.ReplaceAll(canonical, "\n", "|"))
	}
	return c.AccessKey, nil
}
