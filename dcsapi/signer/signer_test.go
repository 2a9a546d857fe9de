package signer

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The published vectors of ../shared/reference/dcs-api.md §4.1, verbatim.
func TestPublishedVectors(t *testing.T) {
	t.Parallel()
	date := time.Date(2006, 1, 2, 15, 4, 5, 0, time.UTC)
	tests := []struct {
		name      string
		method    string
		url       string
		headers   map[string]string
		body      []byte
		signed    []string
		now       time.Time
		ak, sk    string
		canonical string // empty: not published
		hashedCR  string // empty: not published
		want      string
	}{
		{
			name: "V1 GoSDK testParam1", method: "GET", url: "https://example.huaweicloud.com/path?limit=1",
			headers: map[string]string{"TEST_UNDERSCORE": "TEST_VALUE"},
			signed:  []string{"x-sdk-date"}, now: date, ak: "AccessKey", sk: "SecretKey",
			canonical: "GET\n/path/\nlimit=1\nx-sdk-date:20060102T150405Z\n\nx-sdk-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
			hashedCR:  "85c3b7730f308aee452b16138a42a914397e43a8f0d732dfa521c0ef2afa98a4",
			want:      "SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=x-sdk-date, Signature=5a2ce64c865e0e6046321c6f3d5a77ba8413eeaf355c3166c03d58d02ac79624",
		},
		{
			name: "V2 GoSDK testParam2", method: "POST", url: "https://example.huaweicloud.com/path?key=value",
			headers: map[string]string{"TEST_UNDERSCORE": "TEST_VALUE", "Content-Type": "application/json"},
			body:    []byte("{\"Name\":\"test\",\"Id\":1}\n"),
			signed:  []string{"x-sdk-date"}, now: date, ak: "AccessKey", sk: "SecretKey",
			hashedCR: "13f75ff5f5216199f986c7e7f2f77834d5e160ad9e46f37319816dc72ba7eeab",
			want:     "SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=x-sdk-date, Signature=cecc2af119b18ab70b4d094c0750f3b42c02f254903179a0fc2cc72fc9db4f59",
		},
		{
			name:   "V3 API signing guide",
			method: "GET", url: "https://service.region.example.com/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs?limit=2&marker=13551d6b-755d-4757-b956-536f674975c0",
			headers: map[string]string{"Content-Type": "application/json"},
			signed:  []string{"content-type", "host", "x-sdk-date"},
			now:     time.Date(2019, 11, 15, 3, 36, 55, 0, time.UTC),
			ak:      "QTWAOYTTINDUT2QVKYUC", sk: "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc",
			canonical: "GET\n/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs/\nlimit=2&marker=13551d6b-755d-4757-b956-536f674975c0\ncontent-type:application/json\nhost:service.region.example.com\nx-sdk-date:20191115T033655Z\n\ncontent-type;host;x-sdk-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
			hashedCR:  "b25362e603ee30f4f25e7858e8a7160fd36e803bb2dfe206278659d71a9bcd7a",
			want:      "SDK-HMAC-SHA256 Access=QTWAOYTTINDUT2QVKYUC, SignedHeaders=content-type;host;x-sdk-date, Signature=7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe",
		},
		{
			// D1 is derived, not official: a cross-check on a DCS-shaped request.
			name:   "D1 derived DCS ListClients",
			method: "GET", url: "https://dcs.ap-southeast-1.myhuaweicloud.com/v2/0123456789abcdef0123456789abcdef/instances/5560df16-cebf-4473-95c4-d1b573c16e79/clients?node_id=8f7ee181-88e2-49b7-a4bf-81f18f93a135&offset=0&limit=1000&sort=idle&order=desc",
			signed: []string{"host", "x-sdk-date"},
			now:    time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), ak: "AccessKey", sk: "SecretKey",
			want: "SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=host;x-sdk-date, Signature=ee49b9e15142209ee4f8cd30ee8d3067be91b383add7a683380e02ac289ffadd",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest(tc.method, tc.url, bytes.NewReader(tc.body))
			for k, v := range tc.headers {
				req.Header[k] = []string{v} // keep TEST_UNDERSCORE as-is
			}
			Sign(req, tc.body, tc.ak, tc.sk, tc.now, tc.signed)
			if got := req.Header.Get("Authorization"); got != tc.want {
				t.Errorf("Authorization\n got %s\nwant %s", got, tc.want)
			}
			headers := map[string]string{}
			for _, h := range tc.signed {
				v, _ := headerValue(req, h)
				headers[h] = v
			}
			cr := Request{Method: tc.method, EscapedPath: req.URL.EscapedPath(), Query: req.URL.Query(),
				Headers: headers, Signed: tc.signed, BodyHash: BodyHash(tc.body)}.CanonicalRequest()
			if tc.canonical != "" && cr != tc.canonical {
				t.Errorf("canonical request\n got %q\nwant %q", cr, tc.canonical)
			}
			if tc.hashedCR != "" {
				sts := StringToSign(req.Header.Get(HeaderDate), cr)
				if !strings.HasSuffix(sts, "\n"+tc.hashedCR) {
					t.Errorf("string to sign %q does not end in %s", sts, tc.hashedCR)
				}
			}
		})
	}
}

func TestV2BodyHash(t *testing.T) {
	t.Parallel()
	const want = "a29d7b4c5efd1a22011d69fd7b7aee76fe51e4083c609244228de258afd61289"
	if got := BodyHash([]byte("{\"Name\":\"test\",\"Id\":1}\n")); got != want {
		t.Fatalf("BodyHash = %s, want %s", got, want)
	}
	if got := BodyHash(nil); got != emptyBodyHash {
		t.Fatalf("BodyHash(nil) = %s", got)
	}
}

func TestCanonicalQuerySDKVector(t *testing.T) {
	t.Parallel()
	q := url.Values{
		"enable": {"true"}, "limit": {"1"}, "multi": {"3", "1", "2"},
		"path": {"/tmp/123"}, "test": {"一 (&=?!#%.*)"},
	}
	const want = "enable=true&limit=1&multi=1&multi=2&multi=3&path=%2Ftmp%2F123&test=%E4%B8%80%20%28%26%3D%3F%21%23%25.%2A%29"
	if got := CanonicalQuery(q); got != want {
		t.Fatalf("CanonicalQuery\n got %s\nwant %s", got, want)
	}
	// Sorting is on decoded keys: "a~" (0x7e) sorts before "aé" (0xc3...).
	if got := CanonicalQuery(url.Values{"aé": {"1"}, "a~": {"2"}}); got != "a~=2&a%C3%A9=1" {
		t.Fatalf("decoded-key order: got %s", got)
	}
}

func TestCanonicalURI(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"/path":                         "/path/",
		"/path/":                        "/path/",
		"":                              "/",
		"/v2/p/fgs/urn:fss:x/":          "/v2/p/fgs/urn%3Afss%3Ax/",
		"/v2/a%2Fb/c":                   "/v2/a%2Fb/c/",
		"/v2/%E4%B8%80/x y":             "/v2/%E4%B8%80/x%20y/",
		"/v2/p/instances/i-1/clients":   "/v2/p/instances/i-1/clients/",
		"/v2/p/instances/i~1.x_y/nodes": "/v2/p/instances/i~1.x_y/nodes/",
	} {
		if got := CanonicalURI(in); got != want {
			t.Errorf("CanonicalURI(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	secrets := func(ak string) (string, bool) {
		if ak == "AK1" {
			return "SK1", true
		}
		return "", false
	}
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	body := []byte(`{"node_id":"n1","clean_cache":true}`)
	newReq := func() *http.Request {
		r := httptest.NewRequest("POST", "http://dcs.local:8080/v2/p1/instances/i1/clients?x=1", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json;charset=UTF-8")
		r.Header.Set("X-Project-Id", "p1")
		return r
	}
	t.Run("accepts any header set with x-sdk-date", func(t *testing.T) {
		for _, set := range [][]string{nil, {"x-sdk-date"}, {"content-type", "host", "x-project-id", "x-sdk-date"}} {
			r := newReq()
			Sign(r, body, "AK1", "SK1", now, set)
			if ak, err := Verify(r, body, secrets, now.Add(14*time.Minute), DefaultWindow); err != nil || ak != "AK1" {
				t.Errorf("set %v: Verify = %q, %v", set, ak, err)
			}
		}
	})
	cases := []struct {
		name   string
		mutate func(r *http.Request) []byte
		at     time.Time
		want   error
	}{
		{"wrong secret", func(r *http.Request) []byte { Sign(r, body, "AK1", "bad", now, nil); return body }, now, ErrSignatureMismatch},
		{"unknown key", func(r *http.Request) []byte { Sign(r, body, "AK9", "SK1", now, nil); return body }, now, ErrUnknownAccessKey},
		{"stale date", func(r *http.Request) []byte { Sign(r, body, "AK1", "SK1", now, nil); return body }, now.Add(16 * time.Minute), ErrSignatureExpired},
		{"future date", func(r *http.Request) []byte { Sign(r, body, "AK1", "SK1", now, nil); return body }, now.Add(-16 * time.Minute), ErrSignatureExpired},
		{"tampered body", func(r *http.Request) []byte {
			Sign(r, body, "AK1", "SK1", now, nil)
			return []byte(`{"node_id":"n2","clean_cache":true}`)
		}, now, ErrSignatureMismatch},
		{"tampered query", func(r *http.Request) []byte {
			Sign(r, body, "AK1", "SK1", now, nil)
			r.URL.RawQuery = "x=2"
			return body
		}, now, ErrSignatureMismatch},
		{"tampered signed header", func(r *http.Request) []byte {
			Sign(r, body, "AK1", "SK1", now, nil)
			r.Header.Set("X-Project-Id", "p2")
			return body
		}, now, ErrSignatureMismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newReq()
			b := tc.mutate(r)
			if _, err := Verify(r, b, secrets, tc.at, DefaultWindow); !errors.Is(err, tc.want) {
				t.Fatalf("Verify error = %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("x-sdk-date must be signed", func(t *testing.T) {
		r := newReq()
		Sign(r, body, "AK1", "SK1", now, nil)
		r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "x-sdk-date", "x-zzz", 1))
		if _, err := Verify(r, body, secrets, now, DefaultWindow); err == nil || !strings.Contains(err.Error(), "x-sdk-date") {
			t.Fatalf("Verify = %v, want an x-sdk-date error", err)
		}
	})
}

func TestSignUsesFreshDate(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest("GET", "http://h/x", nil)
	Sign(r, nil, "a", "s", time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), nil)
	first := r.Header.Get(HeaderDate)
	Sign(r, nil, "a", "s", time.Date(2020, 1, 1, 0, 5, 0, 0, time.UTC), nil)
	if second := r.Header.Get(HeaderDate); second == first || second != "20200101T000500Z" {
		t.Fatalf("X-Sdk-Date reused: %s then %s", first, second)
	}
}
