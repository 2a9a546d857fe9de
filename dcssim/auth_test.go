package dcssim

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dcsjobs/dcsjobs/dcsapi/signer"
)

// pySign is a minimal SDK-HMAC-SHA256 signer written from the reference,
// independent of package signer. Like the Python SDK it signs Host and
// Content-Type as well as X-Sdk-Date.
func pySign(req *http.Request, body []byte, ak, sk string, now time.Time) {
	enc := func(s string) string {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("_-~.", c) >= 0 {
				b.WriteByte(c)
			} else {
				fmt.Fprintf(&b, "%%%02X", c)
			}
		}
		return b.String()
	}
	date := now.UTC().Format("20060102T150405Z")
	req.Header.Set("X-Sdk-Date", date)
	var segs []string
	for _, s := range strings.Split(req.URL.Path, "/") {
		segs = append(segs, enc(s))
	}
	uri := strings.Join(segs, "/")
	if !strings.HasSuffix(uri, "/") {
		uri += "/"
	}
	q := req.URL.Query()
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var qs []string
	for _, k := range keys {
		vs := append([]string{}, q[k]...)
		sort.Strings(vs)
		for _, v := range vs {
			qs = append(qs, enc(k)+"="+enc(v))
		}
	}
	headers := map[string]string{"content-type": req.Header.Get("Content-Type"), "host": req.URL.Host, "x-sdk-date": date}
	names := []string{"content-type", "host", "x-sdk-date"}
	var ch strings.Builder
	for _, n := range names {
		ch.WriteString(n + ":" + strings.TrimSpace(headers[n]) + "\n")
	}
	bodySum := sha256.Sum256(body)
	cr := strings.Join([]string{req.Method, uri, strings.Join(qs, "&"), ch.String(), strings.Join(names, ";"),
		hex.EncodeToString(bodySum[:])}, "\n")
	crSum := sha256.Sum256([]byte(cr))
	mac := hmac.New(sha256.New, []byte(sk))
	mac.Write([]byte("SDK-HMAC-SHA256\n" + date + "\n" + hex.EncodeToString(crSum[:])))
	req.Header.Set("Authorization", "SDK-HMAC-SHA256 Access="+ak+", SignedHeaders="+strings.Join(names, ";")+
		", Signature="+hex.EncodeToString(mac.Sum(nil)))
}

func TestSignatures(t *testing.T) {
	t.Parallel()
	const tempAK, tempSK, secTok = "TEMPAK0000000000", "temp-secret", "security-token-value"
	e := newEnv(t, Config{
		AccessKeys:     map[string]string{DefaultAK: DefaultSK, tempAK: tempSK},
		SecurityTokens: map[string]string{tempAK: secTok},
	})
	scanPath := clientsPath(SingleInstanceID)
	scanBody := `{"node_id":"` + SingleNodeID + `"}`
	listPath := clientsPath(SingleInstanceID) + "?node_id=" + SingleNodeID + "&sort=idle&order=desc&addr=10.20.1.11&limit=5"
	resign := func(f func(req *http.Request, body []byte)) func(*http.Request) {
		return func(req *http.Request) {
			req.Header.Del("Authorization")
			req.Header.Del("X-Sdk-Date")
			f(req, nil)
		}
	}
	tests := []struct {
		name, method, path, body string
		mod                      func(*http.Request)
		status                   int
		code, msg                string
	}{
		{"signer.Sign GET", "GET", p("/instances"), "", nil, 200, "", ""},
		{"signer.Sign POST", "POST", scanPath, scanBody, nil, 200, "", ""},
		{"signer.Sign x-sdk-date only", "GET", listPath, "", resign(func(req *http.Request, _ []byte) {
			signer.Sign(req, nil, DefaultAK, DefaultSK, e.clock.Now(), []string{"x-sdk-date"})
		}), 500, "DCS.5000", ""}, // authenticated; the node was never scanned to completion
		{"PySDK-style GET", "GET", listPath, "", resign(func(req *http.Request, _ []byte) {
			req.Header.Set("Content-Type", "application/json")
			pySign(req, nil, DefaultAK, DefaultSK, e.clock.Now())
		}), 500, "DCS.5000", ""},
		{"PySDK-style POST", "POST", clientsPath(HAInstanceID), `{"node_id":"` + HASlaveNodeID + `"}`, func(req *http.Request) {
			req.Header.Del("Authorization")
			pySign(req, []byte(`{"node_id":"`+HASlaveNodeID+`"}`), DefaultAK, DefaultSK, e.clock.Now())
		}, 200, "", ""},
		{"GoSDK-style headers", "GET", p("/instances"), "", resign(func(req *http.Request, _ []byte) {
			req.Header.Set("User-Agent", "huaweicloud-usdk-go/3.0")
			req.Header.Set("X-Project-Id", DefaultProjectID)
			signer.Sign(req, nil, DefaultAK, DefaultSK, e.clock.Now(), []string{"user-agent", "x-project-id", "x-sdk-date"})
		}), 200, "", ""},
		{"unknown AK", "GET", p("/instances"), "", resign(func(req *http.Request, _ []byte) {
			signer.Sign(req, nil, "NOSUCHAK", DefaultSK, e.clock.Now(), nil)
		}), 401, "APIGW.0301", "Incorrect IAM authentication information: ak NOSUCHAK not exist"},
		{"wrong SK", "GET", p("/instances"), "", resign(func(req *http.Request, _ []byte) {
			signer.Sign(req, nil, DefaultAK, "wrong", e.clock.Now(), nil)
		}), 401, "APIGW.0301", "verify aksk signature fail, canonicalRequest:GET|/v2/" + DefaultProjectID + "/instances/|"},
		{"stale date", "GET", p("/instances"), "", resign(func(req *http.Request, _ []byte) {
			signer.Sign(req, nil, DefaultAK, DefaultSK, e.clock.Now().Add(-16*time.Minute), nil)
		}), 401, "APIGW.0301", "calc aksk signature fail:signature expired"},
		{"future date", "GET", p("/instances"), "", resign(func(req *http.Request, _ []byte) {
			signer.Sign(req, nil, DefaultAK, DefaultSK, e.clock.Now().Add(16*time.Minute), nil)
		}), 401, "APIGW.0301", "signature expired"},
		{"date within window", "GET", p("/instances"), "", resign(func(req *http.Request, _ []byte) {
			signer.Sign(req, nil, DefaultAK, DefaultSK, e.clock.Now().Add(-14*time.Minute), nil)
		}), 200, "", ""},
		{"tampered body", "POST", scanPath, `{"node_id":"` + ClusterNode1ID + `"}`, func(req *http.Request) {
			req.Header.Del("Authorization")
			signer.Sign(req, []byte(scanBody), DefaultAK, DefaultSK, e.clock.Now(), nil)
		}, 401, "APIGW.0301", "verify aksk signature fail"},
		{"tampered query", "GET", listPath, "", func(req *http.Request) {
			req.URL.RawQuery = strings.Replace(req.URL.RawQuery, "limit=5", "limit=6", 1)
		}, 401, "APIGW.0301", "verify aksk signature fail"},
		{"no credentials", "GET", p("/instances"), "", func(req *http.Request) {
			req.Header.Del("Authorization")
		}, 401, "APIGW.0301", "Incorrect IAM authentication information"},
		{"other scheme", "GET", p("/instances"), "", func(req *http.Request) {
			req.Header.Set("Authorization", "Bearer abc")
		}, 401, "APIGW.0301", ""},
		{"temporary AK with token", "GET", p("/instances"), "", resign(func(req *http.Request, _ []byte) {
			req.Header.Set("X-Security-Token", secTok)
			signer.Sign(req, nil, tempAK, tempSK, e.clock.Now(), nil)
		}), 200, "", ""},
		{"temporary AK without token", "GET", p("/instances"), "", resign(func(req *http.Request, _ []byte) {
			signer.Sign(req, nil, tempAK, tempSK, e.clock.Now(), nil)
		}), 401, "APIGW.0301", "security token"},
		{"temporary AK wrong token", "GET", p("/instances"), "", resign(func(req *http.Request, _ []byte) {
			req.Header.Set("X-Security-Token", "other")
			signer.Sign(req, nil, tempAK, tempSK, e.clock.Now(), nil)
		}), 401, "APIGW.0301", "security token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mods []func(*http.Request)
			if tt.mod != nil {
				mods = append(mods, tt.mod)
			}
			r := e.do(tt.method, tt.path, tt.body, mods...)
			if tt.code == "" {
				if r.status != tt.status {
					t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.raw)
				}
				return
			}
			wantError(t, r, tt.status, tt.code, tt.msg)
			if strings.Contains(string(r.raw), DefaultSK) || strings.Contains(string(r.raw), tempSK) {
				t.Fatal("response leaks a secret key")
			}
		})
	}
}

func TestAuthDisabled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{AuthDisabled: true})
	r := e.do("GET", p("/instances"), "", func(req *http.Request) { req.Header.Del("Authorization") })
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
}

func tokenBodyJSON(domain, user, pw, projectKey, project string) string {
	return fmt.Sprintf(`{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":%q,"password":%q,"domain":{"name":%q}}}},"scope":{"project":{%q:%q}}}}`,
		user, pw, domain, projectKey, project)
}

func TestTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{
		Tokens:   []string{"static-token-1"},
		Users:    []User{{Domain: "acme", Name: "worker", Password: "s3cret"}},
		TokenTTL: time.Hour,
	})
	withToken := func(tok string) func(*http.Request) {
		return func(req *http.Request) {
			req.Header.Del("Authorization")
			req.Header.Del("X-Sdk-Date")
			req.Header.Set("X-Auth-Token", tok)
		}
	}
	getToken := func(t *testing.T, body string) (string, reply) {
		t.Helper()
		req, _ := http.NewRequest("POST", e.ts.URL+"/v3/auth/tokens", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json;charset=utf8")
		r := e.send(req)
		return r.header.Get("X-Subject-Token"), r
	}

	// The default AK/SK is off once other credentials are configured.
	wantError(t, e.do("GET", p("/instances"), ""), 401, "APIGW.0301", "not exist")

	t.Run("IAM errors", func(t *testing.T) {
		tests := []struct {
			name, body string
			status     int
			code       string
		}{
			{"wrong password", tokenBodyJSON("acme", "worker", "nope", "name", DefaultProjectName), 401, "1101"},
			{"wrong domain", tokenBodyJSON("other", "worker", "s3cret", "name", DefaultProjectName), 401, "1101"},
			{"not json", "{", 400, "1100"},
			{"empty", "", 400, "1100"},
			{"no identity", `{"auth":{}}`, 400, "1100"},
			{"no scope", `{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"worker","password":"s3cret","domain":{"name":"acme"}}}}}}`, 400, "1100"},
			{"unknown project", tokenBodyJSON("acme", "worker", "s3cret", "name", "eu-west-0"), 400, "1100"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				tok, r := getToken(t, tt.body)
				errObj, _ := r.body["error"].(map[string]any)
				if r.status != tt.status || tok != "" || errObj == nil || errObj["code"] != tt.code || errObj["message"] == "" {
					t.Fatalf("%d %s", r.status, r.raw)
				}
			})
		}
	})

	tok, r := getToken(t, tokenBodyJSON("acme", "worker", "s3cret", "name", DefaultProjectName))
	if r.status != 201 || len(tok) < 100 {
		t.Fatalf("token: %d %q %s", r.status, tok, r.raw)
	}
	tokObj := r.body["token"].(map[string]any)
	wantExp := e.clock.Now().Add(time.Hour).UTC().Format(iamTimeFormat)
	if tokObj["expires_at"] != wantExp || tokObj["project"].(map[string]any)["id"] != DefaultProjectID {
		t.Fatalf("token body: %s", r.raw)
	}
	if strings.Contains(string(r.raw), tok) {
		t.Fatal("token is in the body; it belongs in X-Subject-Token only")
	}
	if tok2, r := getToken(t, tokenBodyJSON("acme", "worker", "s3cret", "id", DefaultProjectID)); r.status != 201 || tok2 == tok {
		t.Fatalf("scope by id: %d", r.status)
	}

	steps := []struct {
		name   string
		action func()
		token  string
		status int
		code   string
	}{
		{"issued token", nil, tok, 200, ""},
		{"static token", nil, "static-token-1", 200, ""},
		{"unknown token", nil, "bogus", 401, "APIGW.0301"},
		{"issued token near expiry", func() { e.clock.Advance(59 * time.Minute) }, tok, 200, ""},
		{"issued token expired", func() { e.clock.Advance(time.Minute) }, tok, 401, "APIGW.0307"},
		{"static token after ExpireTokens", func() { e.sim.ExpireTokens() }, "static-token-1", 401, "APIGW.0307"},
		{"static token after Reset", func() { e.sim.Reset() }, "static-token-1", 200, ""},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.action != nil {
				st.action()
			}
			r := e.do("GET", p("/instances"), "", withToken(st.token))
			if st.code == "" {
				if r.status != st.status {
					t.Fatalf("%d %s", r.status, r.raw)
				}
				return
			}
			msg := ""
			if st.code == "APIGW.0307" {
				msg = "The token must be updated."
			}
			wantError(t, r, st.status, st.code, msg)
		})
	}

	t.Run("refresh after ExpireTokens", func(t *testing.T) {
		fresh, _ := getToken(t, tokenBodyJSON("acme", "worker", "s3cret", "name", DefaultProjectName))
		if r := e.do("GET", p("/instances"), "", withToken(fresh)); r.status != 200 {
			t.Fatalf("fresh token: %d", r.status)
		}
		req, _ := http.NewRequest("POST", e.ts.URL+"/_sim/expire-tokens", nil)
		if r := e.send(req); r.status != 200 {
			t.Fatalf("admin expire-tokens: %d", r.status)
		}
		wantError(t, e.do("GET", p("/instances"), "", withToken(fresh)), 401, "APIGW.0307", "")
		newer, _ := getToken(t, tokenBodyJSON("acme", "worker", "s3cret", "name", DefaultProjectName))
		if r := e.do("GET", p("/instances"), "", withToken(newer)); r.status != 200 {
			t.Fatalf("token issued after ExpireTokens: %d", r.status)
		}
	})
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"project id", Config{ProjectID: "abc"}, "ProjectID"},
		{"security token without AK", Config{SecurityTokens: map[string]string{"X": "y"}}, "SecurityTokens"},
		{"user incomplete", Config{Users: []User{{Name: "a"}}}, "Users[0]"},
		{"fail share", Config{FailShare: 2}, "FailShare"},
		{"faults", Config{Faults: Faults{ErrorShare: -1}}, "error_share"},
		{"fault op", Config{Faults: Faults{Ops: []string{"Nope"}}}, `"Nope"`},
		{"inventory", Config{Inventory: &Inventory{}}, "at least one instance"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want mention of %q", err, tt.want)
			}
		})
	}
}
