package trigger

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dcsjobs/dcsjobs/dcsapi"
	"github.com/dcsjobs/dcsjobs/tasks"
)

// SMN message types (header X-SMN-MESSAGE-TYPE and body field "type").
const (
	SMNSubscriptionConfirmation = "SubscriptionConfirmation"
	SMNNotification             = "Notification"
	SMNUnsubscribeConfirmation  = "UnsubscribeConfirmation"
)

// SMNMessage is the JSON body SMN POSTs to an HTTP(S) subscription, as
// documented in the SMN user guide ("HTTP(S) message format", smn_ug_a9002).
type SMNMessage struct {
	Type             string  `json:"type"`
	Signature        string  `json:"signature"`
	Subject          *string `json:"subject"`
	TopicURN         string  `json:"topic_urn"`
	MessageID        string  `json:"message_id"`
	SignatureVersion string  `json:"signature_version"`
	Message          string  `json:"message"`
	SubscribeURL     string  `json:"subscribe_url"`
	UnsubscribeURL   string  `json:"unsubscribe_url"`
	SigningCertURL   string  `json:"signing_cert_url"`
	Timestamp        string  `json:"timestamp"`
}

// StringToSign is what SMN signs (smn_ug_a9003 and its sample code): the
// fields in alphabetical order, each as "name\nvalue\n"; for notifications
// message, message_id, subject (only when not empty), timestamp, topic_urn,
// type; for (un)subscription confirmations message, message_id,
// subscribe_url, timestamp, topic_urn, type.
func (m *SMNMessage) StringToSign() string {
	var b strings.Builder
	add := func(k, v string) { b.WriteString(k + "\n" + v + "\n") }
	add("message", m.Message)
	add("message_id", m.MessageID)
	if m.Type == SMNNotification {
		if m.Subject != nil && *m.Subject != "" {
			add("subject", *m.Subject)
		}
	} else {
		add("subscribe_url", m.SubscribeURL)
	}
	add("timestamp", m.Timestamp)
	add("topic_urn", m.TopicURN)
	add("type", m.Type)
	return b.String()
}

// SMNResponse answers subscription and unsubscription confirmations.
type SMNResponse struct {
	Type      string `json:"type"`
	TopicURN  string `json:"topic_urn"`
	Confirmed bool   `json:"confirmed"`
}

func (h *handler) postCloudEye(w http.ResponseWriter, r *http.Request) {
	b, ok := h.readBody(w, r)
	if !ok {
		return
	}
	var m SMNMessage
	if err := json.Unmarshal(b, &m); err != nil {
		writeError(w, http.StatusBadRequest, jsonError(err).Error())
		return
	}
	if ht := r.Header.Get("X-SMN-MESSAGE-TYPE"); ht != "" {
		if m.Type == "" {
			m.Type = ht
		} else if ht != m.Type {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("X-SMN-MESSAGE-TYPE %q differs from the body's type %q", ht, m.Type))
			return
		}
	}
	switch m.Type {
	case SMNSubscriptionConfirmation, SMNNotification, SMNUnsubscribeConfirmation:
	case "":
		writeError(w, http.StatusBadRequest, "not an SMN message: no type")
		return
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("SMN message type %q is not supported", m.Type))
		return
	}
	log := h.o.Log.With().Str("endpoint", "cloudeye").Str("smn_type", m.Type).Str("topic_urn", m.TopicURN).
		Str("message_id", m.MessageID).Str("client", clientIP(r)).Logger()
	if len(h.o.SMNCertHosts) > 0 {
		if err := h.verifySMN(r.Context(), &m); err != nil {
			log.Warn().Err(err).Msg("trigger: SMN message signature not verified; message refused")
			writeError(w, http.StatusForbidden, "the message signature could not be verified")
			return
		}
	}
	switch m.Type {
	case SMNSubscriptionConfirmation:
		host, err := h.confirm(r.Context(), m.SubscribeURL)
		if err != nil {
			log.Warn().Err(err).Msg("trigger: SMN subscription not confirmed")
			var ce confirmError
			if errors.As(err, &ce) {
				writeError(w, http.StatusBadRequest, err.Error())
				return
			}
			writeError(w, http.StatusBadGateway, "confirming the subscription failed: "+err.Error())
			return
		}
		log.Info().Str("confirmed_at", host).Msg("trigger: SMN subscription confirmed")
		writeJSON(w, http.StatusOK, SMNResponse{Type: m.Type, TopicURN: m.TopicURN, Confirmed: true})
	case SMNUnsubscribeConfirmation:
		// Not resubscribing: whoever unsubscribed meant it.
		log.Info().Msg("trigger: SMN subscription cancelled")
		writeJSON(w, http.StatusOK, SMNResponse{Type: m.Type, TopicURN: m.TopicURN})
	default:
		t, skip := parseCloudEyeAlarm(m.Message, h.o.CloudEyeInstanceKeys, h.o.CloudEyeNodeKeys)
		if skip != "" {
			log.Info().Str("reason", skip).Msg("trigger: Cloud Eye notification ignored")
			writeJSON(w, http.StatusOK, SubmitResponse{Requests: []Submitted{}, Skipped: []Skipped{{Alert: m.MessageID, Reason: skip}}})
			return
		}
		opts := submitOptions([]target{t})
		// SMN may deliver a message more than once: its id makes the request
		// id, so a redelivery finds the request instead of starting another.
		if id := "smn_" + m.MessageID; m.MessageID != "" && tasks.ValidateRequestID(id) == nil {
			opts[0].ID = id
		}
		h.submitAll(w, r, "cloudeye", opts, nil, http.StatusAccepted)
	}
}

// confirmError: the subscribe_url itself is unacceptable (400, not 502).
type confirmError struct{ msg string }

func (e confirmError) Error() string { return e.msg }

// confirm GETs subscribe_url, which must be https (it carries SMN's
// confirmation token; plain http would leak it and invite requests to
// arbitrary local services). It returns the host confirmed at.
func (h *handler) confirm(ctx context.Context, raw string) (string, error) {
	if raw == "" {
		return "", confirmError{"subscription confirmation without subscribe_url"}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		return "", confirmError{"subscribe_url must be an https URL"}
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", confirmError{"subscribe_url is invalid"}
	}
	resp, err := h.o.HTTPClient.Do(req)
	if err != nil {
		// The error text contains the URL, whose query is SMN's token: keep the host only.
		return "", fmt.Errorf("GET https://%s/...: %w", u.Host, unwrapURLError(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return "", fmt.Errorf("GET https://%s/... answered %s", u.Host, resp.Status)
	}
	return u.Host, nil
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// verifySMN checks the signature: version v1, an RSA certificate fetched over
// HTTPS from an allowed host, PKCS #1 v1.5 with SHA-256 over StringToSign (the
// algorithm of SMN's Go sample code).
func (h *handler) verifySMN(ctx context.Context, m *SMNMessage) error {
	if !strings.EqualFold(m.SignatureVersion, "v1") {
		return fmt.Errorf("signature_version %q is not supported, want v1", m.SignatureVersion)
	}
	if m.Signature == "" {
		return errors.New("message has no signature")
	}
	sig, err := base64.StdEncoding.DecodeString(m.Signature)
	if err != nil {
		return fmt.Errorf("signature is not base64: %w", err)
	}
	u, err := url.Parse(m.SigningCertURL)
	if err != nil || u.Scheme != "https" || u.User != nil {
		return fmt.Errorf("signing_cert_url %q is not an https URL", m.SigningCertURL)
	}
	if !slices.Contains(h.o.SMNCertHosts, u.Host) && !slices.Contains(h.o.SMNCertHosts, u.Hostname()) {
		return fmt.Errorf("signing_cert_url host %q is not in the allowed hosts %v", u.Host, h.o.SMNCertHosts)
	}
	cert, err := h.certs.get(ctx, h.o.HTTPClient, u.String())
	if err != nil {
		return err
	}
	now := h.o.Now()
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return fmt.Errorf("signing certificate is not valid at %s (valid %s to %s)", now.UTC().Format(time.RFC3339),
			cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return fmt.Errorf("signing certificate has a %T key, want RSA", cert.PublicKey)
	}
	sum := sha256.Sum256([]byte(m.StringToSign()))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		return errors.New("signature does not match the message")
	}
	return nil
}

// certCache keeps fetched signing certificates by URL (SMN uses one per
// region), so a delivery does not cost a download.
type certCache struct {
	mu    sync.Mutex
	certs map[string]*x509.Certificate
}

const maxCerts = 32

func newCertCache() *certCache { return &certCache{certs: map[string]*x509.Certificate{}} }

func (c *certCache) get(ctx context.Context, client *http.Client, u string) (*x509.Certificate, error) {
	c.mu.Lock()
	cert := c.certs[u]
	c.mu.Unlock()
	if cert != nil {
		return cert, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching the signing certificate: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching the signing certificate %s: %s", u, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("fetching the signing certificate: %w", err)
	}
	der := b
	if blk, _ := pem.Decode(b); blk != nil {
		der = blk.Bytes
	}
	cert, err = x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("signing certificate %s: %w", u, err)
	}
	c.mu.Lock()
	if len(c.certs) >= maxCerts {
		clear(c.certs)
	}
	c.certs[u] = cert
	c.mu.Unlock()
	return cert, nil
}

// parseCloudEyeAlarm reads the Cloud Eye alarm carried in an SMN
// notification's message. Its fields are not a fixed, documented schema (the
// HTTP(S) content follows the alarm's notification template), so this reads a
// JSON object leniently:
//
//   - state: "alarm_status" or "alarm_state"; "alarm" (Cloud Eye's alarm_state
//     value), "firing" or "triggered" mean in alarm; anything else is ignored;
//   - namespace: "namespace" or metric.namespace; when present it must be SYS.DCS;
//   - instance and node: the first of instKeys/nodeKeys found as a top-level
//     string field, or as a dimension in "dimensions" or metric.dimensions
//     (a [{"name","value"}] list, as in the Cloud Eye API, or an object).
//
// It returns the target, or a non-empty reason why the message is ignored.
func parseCloudEyeAlarm(msg string, instKeys, nodeKeys []string) (target, string) {
	dec := json.NewDecoder(bytes.NewReader([]byte(msg)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return target{}, "the message is not a JSON object (configure the alarm's HTTP(S) notification template; see the package documentation)"
	}
	state := strings.ToLower(firstString(m, []string{"alarm_status", "alarm_state"}))
	switch state {
	case "alarm", "firing", "triggered":
	case "":
		return target{}, "the message has no alarm_status"
	default:
		return target{}, fmt.Sprintf("alarm_status is %q, not alarm", state)
	}
	metric, _ := m["metric"].(map[string]any)
	ns := firstString(m, []string{"namespace"})
	if ns == "" && metric != nil {
		ns = firstString(metric, []string{"namespace"})
	}
	if ns != "" && !strings.EqualFold(ns, "SYS.DCS") {
		return target{}, fmt.Sprintf("namespace is %q, not SYS.DCS", ns)
	}
	dims := dimensions(m["dimensions"])
	if metric != nil {
		mergeMissing(dims, dimensions(metric["dimensions"]))
	}
	lookup := func(keys []string) (string, string) {
		for _, k := range keys {
			if v := firstString(m, []string{k}); v != "" {
				return k, v
			}
			if v := dims[k]; v != "" {
				return k, v
			}
		}
		return "", ""
	}
	ik, inst := lookup(instKeys)
	if inst == "" {
		return target{}, fmt.Sprintf("the message names no instance (looked for %v)", instKeys)
	}
	if err := dcsapi.ValidateID(ik, inst); err != nil {
		return target{}, err.Error()
	}
	nk, node := lookup(nodeKeys)
	if node != "" && dcsapi.ValidateID(nk, node) != nil {
		node = "" // not usable as a node id: query the whole instance
	}
	return target{instance: inst, node: node}, ""
}

func firstString(m map[string]any, keys []string) string {
	for _, k := range keys {
		if s, ok := m[k].(string); ok && s != "" {
			return s
		}
	}
	return ""
}

// dimensions reads [{"name":n,"value":v},...] or {n:v,...}.
func dimensions(v any) map[string]string {
	out := map[string]string{}
	switch d := v.(type) {
	case []any:
		for _, e := range d {
			if o, ok := e.(map[string]any); ok {
				n, _ := o["name"].(string)
				val, _ := o["value"].(string)
				if n != "" && val != "" {
					if _, dup := out[n]; !dup {
						out[n] = val
					}
				}
			}
		}
	case map[string]any:
		for k, e := range d {
			if s, ok := e.(string); ok && s != "" {
				out[k] = s
			}
		}
	}
	return out
}

func mergeMissing(dst, src map[string]string) {
	for k, v := range src {
		if _, ok := dst[k]; !ok {
			dst[k] = v
		}
	}
}
