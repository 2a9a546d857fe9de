package trigger_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dcsjobs/dcsjobs/trigger"
)

// smnServer plays SMN's side: the subscribe_url and the signing certificate.
type smnServer struct {
	*httptest.Server
	mu        sync.Mutex
	confirms  []string // raw queries of confirmation GETs
	certGets  int
	failWith  int
	key       *rsa.PrivateKey
	certPEM   []byte
	certValid [2]time.Time
}

func newSMNServer(t *testing.T) *smnServer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s := &smnServer{key: key}
	nb, na := time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "smn test signing"},
		NotBefore: nb, NotAfter: na}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	s.certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	s.certValid = [2]time.Time{nb, na}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		switch {
		case r.URL.Path == "/smn/subscription/confirm" && r.Method == http.MethodGet:
			if s.failWith != 0 {
				w.WriteHeader(s.failWith)
				return
			}
			s.confirms = append(s.confirms, r.URL.RawQuery)
			_, _ = w.Write([]byte(`{"request_id":"x","subscription_urn":"urn:smn:..."}`))
		case r.URL.Path == "/smn/cert.pem":
			s.certGets++
			_, _ = w.Write(s.certPEM)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *smnServer) host() string { u, _ := url.Parse(s.URL); return u.Host }

// sign sets signing_cert_url and signature on an SMN message body.
func (s *smnServer) sign(t *testing.T, body string) string {
	t.Helper()
	var m trigger.SMNMessage
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatal(err)
	}
	m.SigningCertURL = s.URL + "/smn/cert.pem"
	sum := sha256.Sum256([]byte(m.StringToSign()))
	sig, err := rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	m.Signature = base64.StdEncoding.EncodeToString(sig)
	b, _ := json.Marshal(m)
	return string(b)
}

func TestSMNStringToSign(t *testing.T) {
	t.Parallel()
	// The examples of the SMN guide's "Message Signature Verification" page.
	subj := "demo"
	n := trigger.SMNMessage{Type: "Notification", Message: "My test message", MessageID: "88c726942175432bac921eafd0036163",
		Subject: &subj, Timestamp: "2016-08-15T07:29:16Z", TopicURN: "urn:smn:regionId:74dc9e44d0cc4573adfce91cdfdd3ba9:xxxx"}
	want := "message\nMy test message\nmessage_id\n88c726942175432bac921eafd0036163\nsubject\ndemo\ntimestamp\n" +
		"2016-08-15T07:29:16Z\ntopic_urn\nurn:smn:regionId:74dc9e44d0cc4573adfce91cdfdd3ba9:xxxx\ntype\nNotification\n"
	if got := n.StringToSign(); got != want {
		t.Errorf("notification:\n%q\nwant\n%q", got, want)
	}
	n.Subject = nil
	if got := n.StringToSign(); strings.Contains(got, "subject") {
		t.Errorf("notification without subject signs it: %q", got)
	}
	c := trigger.SMNMessage{Type: "SubscriptionConfirmation", Message: "m", MessageID: "id", SubscribeURL: "https://x/confirm",
		Timestamp: "ts", TopicURN: "urn", Subject: &subj}
	want = "message\nm\nmessage_id\nid\nsubscribe_url\nhttps://x/confirm\ntimestamp\nts\ntopic_urn\nurn\ntype\nSubscriptionConfirmation\n"
	if got := c.StringToSign(); got != want {
		t.Errorf("confirmation:\n%q\nwant\n%q", got, want)
	}
}

func TestCloudEye(t *testing.T) {
	t.Parallel()
	smn := newSMNServer(t)
	confirmation := strings.ReplaceAll(readFile(t, "testdata/smn/subscription_confirmation.json"), "{{SERVER}}", smn.URL)
	tests := []struct {
		name   string
		body   string
		header map[string]string
		code   int
		want   []q
		errSub string
	}{
		{"alarm, instance dimension", readFile(t, "testdata/smn/notification_alarm.json"), nil, 202,
			[]q{{inst1, ""}}, ""},
		{"alarm, node dimension", readFile(t, "testdata/smn/notification_alarm_node.json"), nil, 202,
			[]q{{"22222222-2222-4222-8222-222222222222", "22222222-0000-4000-8000-000000000001"}}, ""},
		{"alarm, flat fields", readFile(t, "testdata/smn/notification_flat.json"), nil, 202,
			[]q{{"44444444-4444-4444-8444-444444444444", ""}}, ""},
		{"ok state ignored", readFile(t, "testdata/smn/notification_ok.json"), nil, 200, nil, ""},
		{"other namespace ignored", readFile(t, "testdata/smn/notification_other_namespace.json"), nil, 200, nil, ""},
		{"text message ignored", readFile(t, "testdata/smn/notification_text.json"), nil, 200, nil, ""},
		{"unsubscribe", readFile(t, "testdata/smn/unsubscribe_confirmation.json"), nil, 200, nil, ""},
		{"header type agrees", readFile(t, "testdata/smn/notification_alarm.json"),
			map[string]string{"X-SMN-MESSAGE-TYPE": "Notification"}, 202, []q{{inst1, ""}}, ""},
		{"header type differs", readFile(t, "testdata/smn/notification_alarm.json"),
			map[string]string{"X-SMN-MESSAGE-TYPE": "SubscriptionConfirmation"}, 400, nil, "differs"},
		{"no type", `{"message":"x"}`, nil, 400, nil, "not an SMN message"},
		{"unknown type", `{"type":"Other"}`, nil, 400, nil, `type "Other" is not supported`},
		{"not JSON", `type=Notification`, nil, 400, nil, "not valid JSON"},
		{"plain http subscribe_url", strings.ReplaceAll(confirmation, smn.URL, "http://127.0.0.1:1"), nil, 400, nil, "must be an https URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(o *trigger.Options) { o.HTTPClient = smn.Client() })
			w := f.do(t, req{path: trigger.PathCloudEye + "?token=" + testToken, auth: "-", body: tt.body, header: tt.header})
			if w.Code != tt.code {
				t.Fatalf("code %d, want %d: %s", w.Code, tt.code, w.Body)
			}
			if tt.errSub != "" && !strings.Contains(errorOf(t, w), tt.errSub) {
				t.Errorf("error %q, want %q", errorOf(t, w), tt.errSub)
			}
			checkSubmitted(t, f.subm.submitted(), tt.want)
		})
	}

	t.Run("subscription confirmation", func(t *testing.T) {
		f := newFixture(t, func(o *trigger.Options) { o.HTTPClient = smn.Client() })
		w := f.do(t, req{path: trigger.PathCloudEye + "?token=" + testToken, auth: "-", body: confirmation,
			header: map[string]string{"X-SMN-MESSAGE-TYPE": "SubscriptionConfirmation"}})
		if w.Code != 200 {
			t.Fatalf("code %d: %s", w.Code, w.Body)
		}
		if r := decode[trigger.SMNResponse](t, w); !r.Confirmed || !strings.HasSuffix(r.TopicURN, ":dcs-alarms") {
			t.Errorf("answer %+v", r)
		}
		smn.mu.Lock()
		defer smn.mu.Unlock()
		if len(smn.confirms) != 1 || !strings.HasPrefix(smn.confirms[0], "token=0a419ac94f80") {
			t.Errorf("confirmation GETs %q", smn.confirms)
		}
	})
	t.Run("redelivery", func(t *testing.T) {
		f := newFixture(t, nil)
		body := readFile(t, "testdata/smn/notification_alarm.json")
		first := f.do(t, req{path: trigger.PathCloudEye, body: body})
		second := f.do(t, req{path: trigger.PathCloudEye, body: body})
		if first.Code != 202 || second.Code != 200 {
			t.Fatalf("codes %d, %d; want 202, 200: %s", first.Code, second.Code, second.Body)
		}
		a, b := decode[trigger.SubmitResponse](t, first), decode[trigger.SubmitResponse](t, second)
		if a.Requests[0].ID != "smn_d84bd6629ef04513ad2e37bffd6e17cb" || b.Requests[0].ID != a.Requests[0].ID ||
			a.Requests[0].Duplicate || !b.Requests[0].Duplicate {
			t.Errorf("answers %+v then %+v", a, b)
		}
		if n := len(f.subm.submitted()); n != 1 {
			t.Errorf("%d submissions, want 1", n)
		}
	})
	t.Run("confirmation refused by SMN", func(t *testing.T) {
		bad := newSMNServer(t)
		bad.failWith = http.StatusForbidden
		f := newFixture(t, func(o *trigger.Options) { o.HTTPClient = bad.Client() })
		body := strings.ReplaceAll(readFile(t, "testdata/smn/subscription_confirmation.json"), "{{SERVER}}", bad.URL)
		w := f.do(t, req{path: trigger.PathCloudEye, body: body})
		if w.Code != http.StatusBadGateway || strings.Contains(w.Body.String(), "token=") {
			t.Fatalf("code %d, body %s (want 502 without the confirmation token)", w.Code, w.Body)
		}
	})
}

func TestSMNSignature(t *testing.T) {
	t.Parallel()
	smn := newSMNServer(t)
	alarm := readFile(t, "testdata/smn/notification_alarm.json")
	confirmation := strings.ReplaceAll(readFile(t, "testdata/smn/subscription_confirmation.json"), "{{SERVER}}", smn.URL)
	tamper := func(body string) string { return strings.Replace(body, `alarm_name`, `alarm_namE`, 1) }
	other := newSMNServer(t) // a certificate from a host that is not allowed
	tests := []struct {
		name  string
		hosts []string
		body  string
		code  int
		n     int
		now   time.Time
	}{
		{"signed alarm", []string{smn.host()}, smn.sign(t, alarm), 202, 1, time.Time{}},
		{"signed alarm, host name only", []string{"127.0.0.1"}, smn.sign(t, alarm), 202, 1, time.Time{}},
		{"signed confirmation", []string{smn.host()}, smn.sign(t, confirmation), 200, 0, time.Time{}},
		{"tampered", []string{smn.host()}, tamper(smn.sign(t, alarm)), 403, 0, time.Time{}},
		{"unsigned", []string{smn.host()}, alarm, 403, 0, time.Time{}},
		{"certificate host not allowed", []string{smn.host()}, other.sign(t, alarm), 403, 0, time.Time{}},
		{"certificate expired", []string{smn.host()}, smn.sign(t, alarm), 403, 0, smn.certValid[1].Add(time.Hour)},
		{"verification off", nil, tamper(smn.sign(t, alarm)), 202, 1, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(o *trigger.Options) {
				o.HTTPClient = smn.Client()
				o.SMNCertHosts = tt.hosts
				if !tt.now.IsZero() {
					o.Now = func() time.Time { return tt.now }
				}
			})
			w := f.do(t, req{path: trigger.PathCloudEye, body: tt.body})
			if w.Code != tt.code {
				t.Fatalf("code %d, want %d: %s", w.Code, tt.code, w.Body)
			}
			if tt.code == 403 && errorOf(t, w) != "the message signature could not be verified" {
				t.Errorf("error %q", errorOf(t, w))
			}
			if n := len(f.subm.submitted()); n != tt.n {
				t.Errorf("%d submissions, want %d", n, tt.n)
			}
		})
	}
	t.Run("certificate cached", func(t *testing.T) {
		s := newSMNServer(t)
		f := newFixture(t, func(o *trigger.Options) { o.HTTPClient = s.Client(); o.SMNCertHosts = []string{s.host()} })
		for i := 0; i < 3; i++ {
			body := strings.Replace(alarm, "d84bd6629ef04513ad2e37bffd6e17cb", fmt.Sprintf("message%d", i), 1)
			if w := f.do(t, req{path: trigger.PathCloudEye, body: s.sign(t, body)}); w.Code != 202 {
				t.Fatalf("code %d: %s", w.Code, w.Body)
			}
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.certGets != 1 {
			t.Errorf("certificate fetched %d times, want 1", s.certGets)
		}
	})
}
