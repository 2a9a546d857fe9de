package dcsapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/dcsjobs/dcsjobs/dcsapi/signer"
)

// Secret holds a credential. It prints as "REDACTED" through fmt (every verb),
// encoding/json and encoding.TextMarshaler, so a credential that reaches a log
// line, an error or a payload by mistake does not leak. Reveal returns the value.
type Secret string

const redacted = "REDACTED"

// Reveal returns the secret value.
func (s Secret) Reveal() string { return string(s) }

// String implements fmt.Stringer.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString implements fmt.GoStringer.
func (s Secret) GoString() string { return `dcsapi.Secret("` + s.String() + `")` }

// Format implements fmt.Formatter, so %x or %q cannot print the value either.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, s.GoString())
		return
	}
	_, _ = io.WriteString(f, s.String())
}

// MarshalText implements encoding.TextMarshaler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// Authenticator adds credentials to a request. body holds the exact bytes that
// will be sent (nil for none). Implementations must be safe for concurrent use.
type Authenticator interface {
	Authenticate(ctx context.Context, req *http.Request, body []byte) error
}

// Refresher is implemented by authenticators whose credentials can go stale
// (cached tokens). After a 401 the client calls Invalidate and retries the
// request once.
type Refresher interface {
	Invalidate()
}

// AKSK signs requests with an access key and secret key (SDK-HMAC-SHA256).
// SecurityToken is set for temporary credentials (sent as X-Security-Token and
// signed). X-Sdk-Date is computed for every request; it is never reused.
type AKSK struct {
	AccessKey     string
	SecretKey     Secret
	SecurityToken Secret
	// SignedHeaders lists the headers to sign when present; nil means
	// signer.DefaultSignedHeaders (host, x-sdk-date, x-project-id,
	// x-security-token). The gateway accepts any set with x-sdk-date.
	SignedHeaders []string
	// Now is the clock (default time.Now); tests set it.
	Now func() time.Time
}

// Authenticate implements Authenticator.
func (a *AKSK) Authenticate(_ context.Context, req *http.Request, body []byte) error {
	if a.AccessKey == "" || a.SecretKey == "" {
		return errors.New("AK/SK credentials: access key or secret key is empty")
	}
	if a.SecurityToken != "" {
		req.Header.Set("X-Security-Token", a.SecurityToken.Reveal())
	}
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	signer.Sign(req, body, a.AccessKey, a.SecretKey.Reveal(), now(), a.SignedHeaders)
	return nil
}

func (a *AKSK) secrets() []string {
	return []string{a.SecretKey.Reveal(), a.SecurityToken.Reveal()}
}

func (t *Token) secrets() []string { return []string{t.Token.Reveal()} }

func (p *IAMPassword) secrets() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return []string{p.Password.Reveal(), p.token}
}

// String never shows the secret key or the security token.
func (a *AKSK) String() string {
	return fmt.Sprintf("AKSK{AccessKey:%s SecretKey:%s SecurityToken:%s}", a.AccessKey, a.SecretKey, a.SecurityToken)
}

// Token sends a fixed IAM token as X-Auth-Token. It cannot refresh itself: an
// expired token makes every call fail with a 401 (ClassAuth).
type Token struct {
	Token Secret
}

// Authenticate implements Authenticator.
func (t *Token) Authenticate(_ context.Context, req *http.Request, _ []byte) error {
	if t.Token == "" {
		return errors.New("token credentials: token is empty")
	}
	req.Header.Set("X-Auth-Token", t.Token.Reveal())
	return nil
}

// String never shows the token.
func (t *Token) String() string { return "Token{" + t.Token.String() + "}" }

// IAMPassword exchanges an IAM user's password for a project-scoped token
// (POST {IAMEndpoint}/v3/auth/tokens, token in the X-Subject-Token header),
// caches it, and fetches a new one RefreshBefore its expiry (tokens live 24 h)
// or after a 401 (Invalidate). Concurrent callers share one fetch.
type IAMPassword struct {
	// IAMEndpoint is the IAM base URL, e.g. https://iam.ap-southeast-1.myhuaweicloud.com.
	// Empty: derived from Region.
	IAMEndpoint string
	// Region is used for the endpoint when IAMEndpoint is empty, and as the
	// project name when neither ProjectID nor ProjectName is set.
	Region string
	// Domain is the account name owning the user.
	Domain   string
	User     string
	Password Secret
	// ProjectID or ProjectName scopes the token; ProjectID wins.
	ProjectID   string
	ProjectName string
	// RefreshBefore is how long before expiry a new token is fetched. Default
	// 1 h; a token whose lifetime is shorter is refreshed at half-life.
	RefreshBefore time.Duration
	// HTTPClient defaults to a client with a 30 s timeout.
	HTTPClient *http.Client
	// Now is the clock (default time.Now).
	Now func() time.Time

	mu      sync.Mutex
	token   string
	expires time.Time
	issued  time.Time
	fetches int
}

// Authenticate implements Authenticator.
func (p *IAMPassword) Authenticate(ctx context.Context, req *http.Request, _ []byte) error {
	tok, err := p.current(ctx)
	if err != nil {
		return err
	}
	req.Header.Set("X-Auth-Token", tok)
	return nil
}

// Invalidate drops the cached token; the next request fetches a new one.
func (p *IAMPassword) Invalidate() {
	p.mu.Lock()
	p.token = ""
	p.mu.Unlock()
}

// Fetches reports how many tokens were obtained so far (for tests and metrics).
func (p *IAMPassword) Fetches() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fetches
}

// String never shows the password or the token.
func (p *IAMPassword) String() string {
	return fmt.Sprintf("IAMPassword{Domain:%s User:%s Password:%s}", p.Domain, p.User, p.Password)
}

func (p *IAMPassword) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *IAMPassword) current(ctx context.Context) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if p.token != "" && now.Before(p.refreshAt()) {
		return p.token, nil
	}
	tok, exp, err := p.fetch(ctx)
	if err != nil {
		return "", err
	}
	p.token, p.expires, p.issued = tok, exp, now
	p.fetches++
	return tok, nil
}

func (p *IAMPassword) refreshAt() time.Time {
	margin := p.RefreshBefore
	if margin <= 0 {
		margin = time.Hour
	}
	if life := p.expires.Sub(p.issued); margin > life/2 {
		margin = life / 2
	}
	return p.expires.Add(-margin)
}

func (p *IAMPassword) endpoint() (string, error) {
	if p.IAMEndpoint != "" {
		return strings.TrimRight(p.IAMEndpoint, "/"), nil
	}
	if err := validateRegion(p.Region); err != nil {
		return "", fmt.Errorf("IAM password credentials: %w", err)
	}
	return "https://iam." + p.Region + ".myhuaweicloud.com", nil
}

func (p *IAMPassword) fetch(ctx context.Context) (string, time.Time, error) {
	base, err := p.endpoint()
	if err != nil {
		return "", time.Time{}, err
	}
	if p.User == "" || p.Password == "" || p.Domain == "" {
		return "", time.Time{}, errors.New("IAM password credentials: domain, user and password are required")
	}
	project := map[string]string{}
	switch {
	case p.ProjectID != "":
		project["id"] = p.ProjectID
	case p.ProjectName != "":
		project["name"] = p.ProjectName
	default:
		project["name"] = p.Region
	}
	type name struct {
		Name string `json:"name"`
	}
	var body struct {
		Auth struct {
			Identity struct {
				Methods  []string `json:"methods"`
				Password struct {
					User struct {
						Name     string `json:"name"`
						Password string `json:"password"`
						Domain   name   `json:"domain"`
					} `json:"user"`
				} `json:"password"`
			} `json:"identity"`
			Scope struct {
				Project map[string]string `json:"project"`
			} `json:"scope"`
		} `json:"auth"`
	}
	body.Auth.Identity.Methods = []string{"password"}
	u := &body.Auth.Identity.Password.User
	u.Name, u.Password, u.Domain.Name = p.User, p.Password.Reveal(), p.Domain
	body.Auth.Scope.Project = project
	buf, err := json.Marshal(body)
	if err != nil {
		return "", time.Time{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v3/auth/tokens", bytes.NewReader(buf))
	if err != nil {
		return "", time.Time{}, err
	}
	req.Header.Set("Content-Type", "application/json;charset=UTF-8")
	hc := p.HTTPClient
	if hc == nil {
		hc = defaultHTTPClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("IAM token request: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("IAM token request: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return "", time.Time{}, parseAPIError(OpIAMToken, resp.StatusCode, resp.Header, data, p.now())
	}
	tok := resp.Header.Get("X-Subject-Token")
	if tok == "" {
		return "", time.Time{}, &DecodeError{Op: OpIAMToken, Err: errors.New("no X-Subject-Token header")}
	}
	var out struct {
		Token struct {
			ExpiresAt FlexTime `json:"expires_at"`
		} `json:"token"`
	}
	_ = json.Unmarshal(data, &out) // the token is in the header; expiry is best effort
	exp := out.Token.ExpiresAt.Time
	if exp.IsZero() {
		exp = p.now().Add(24 * time.Hour)
	}
	return tok, exp, nil
}
