package trigger

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/dcsjobs/dcsjobs/results"
	"github.com/dcsjobs/dcsjobs/tasks"
)

// Submitter submits queries; *tasks.Submitter implements it.
type Submitter interface {
	Submit(ctx context.Context, o tasks.SubmitOptions) (*tasks.Request, error)
}

// StatusReader reads request records; *tasks.Requests implements it and
// returns an error wrapping tasks.ErrRequestNotFound for unknown ids.
type StatusReader interface {
	Status(ctx context.Context, id string) (*tasks.Status, error)
}

// SnapshotReader reads stored snapshots; *results.Store implements it and
// returns an error wrapping results.ErrNotFound for unknown or expired ones.
type SnapshotReader interface {
	Get(ctx context.Context, instanceID, nodeID, snapshotID string) (*results.Snapshot, error)
}

// Reader is what the status and result endpoints read. Build one from a
// *tasks.Requests and a *results.Store with Combine (both have a Get method,
// so one struct cannot simply embed both).
type Reader interface {
	StatusReader
	SnapshotReader
}

// Combine returns a Reader reading statuses from s and snapshots from g.
func Combine(s StatusReader, g SnapshotReader) Reader { return combined{s, g} }

type combined struct {
	s StatusReader
	g SnapshotReader
}

func (c combined) Status(ctx context.Context, id string) (*tasks.Status, error) {
	return c.s.Status(ctx, id)
}

func (c combined) Get(ctx context.Context, inst, node, snap string) (*results.Snapshot, error) {
	return c.g.Get(ctx, inst, node, snap)
}

// Options configure the trigger API. Only Token, Submitter and Reader are
// required.
type Options struct {
	// Token is the bearer token every caller must present. Required: the API
	// is off unless a token is configured (see LoadToken); at least
	// MinTokenLength characters, without whitespace.
	Token string
	// TokenFile is the file the token was read from, if any; NewHandler logs a
	// warning when it is readable by every user. Informational only.
	TokenFile string

	Submitter Submitter
	Reader    Reader

	// MaxBody bounds request bodies; larger ones get 413. Default 64 KiB.
	MaxBody int64
	// Rate and Burst limit requests per client IP (the host of RemoteAddr;
	// X-Forwarded-For is not trusted, so behind a reverse proxy every client
	// shares the proxy's budget). Checked before authentication, so guessing
	// tokens is slowed too. Default 5/s with a burst of 10; rate.Inf disables.
	Rate  rate.Limit
	Burst int

	// Log receives one info line per accepted trigger, and warnings. Default:
	// a disabled logger. The token and request bodies are never logged.
	Log zerolog.Logger
	// Registerer, when set, gets dcsjobs_trigger_requests_total{endpoint,code}.
	Registerer prometheus.Registerer

	// AlertmanagerInstanceLabels are the alert labels holding the DCS instance
	// id, first present wins. Default ["instance_id", "dcs_instance_id"].
	AlertmanagerInstanceLabels []string
	// AlertmanagerNodeLabels are the labels holding the node id; an alert
	// without one queries every node of the instance. Default ["node_id", "dcs_node_id"].
	AlertmanagerNodeLabels []string

	// CloudEyeInstanceKeys are the keys (top-level fields of the alarm
	// message, or metric dimension names) holding the DCS instance id.
	// Default ["dcs_instance_id", "instance_id", "resource_id"].
	CloudEyeInstanceKeys []string
	// CloudEyeNodeKeys hold the node id. Default ["dcs_node_id", "node_id",
	// "dcs_cluster_redis_node", "dcs_cluster_proxy_node", "dcs_cluster_proxy2_node"].
	// Hazard: that the node dimensions of DCS metrics carry the same node id
	// ScanClients takes is unconfirmed; an id DCS rejects fails the request
	// (DCS.3053). Drop those names to always query all nodes.
	CloudEyeNodeKeys []string
	// SMNCertHosts enables verification of SMN message signatures: the hosts
	// (host or host:port) allowed to serve the signing certificate named in
	// signing_cert_url, fetched over HTTPS, e.g. "smn.ap-southeast-1.myhuaweicloud.com".
	// Empty (default): signatures are not verified and the token alone
	// authenticates SMN deliveries.
	SMNCertHosts []string
	// HTTPClient confirms SMN subscriptions (GET subscribe_url) and fetches
	// signing certificates. Default: a client with a 10 s timeout.
	HTTPClient *http.Client

	// Now is the clock (rate limiter, certificate validity). Default time.Now.
	Now func() time.Time
}

// Defaults of Options.
const (
	DefaultMaxBody = 64 << 10
	DefaultRate    = rate.Limit(5)
	DefaultBurst   = 10
	// MinTokenLength is the shortest token accepted.
	MinTokenLength = 16
	// MaxNodes is the most node ids one POST /api/v1/queries may carry.
	MaxNodes = 100
)

// Paths served by the handler.
const (
	PathQueries      = "/api/v1/queries"
	PathAlertmanager = "/api/v1/alertmanager"
	PathCloudEye     = "/api/v1/cloudeye"
)

type handler struct {
	o        Options
	digest   [sha256.Size]byte
	mux      *http.ServeMux
	limiter  *ipLimiter
	requests *prometheus.CounterVec
	certs    *certCache
}

// NewHandler returns the trigger API. It serves the full paths (PathQueries,
// PathQueries/{id}, PathQueries/{id}/result, PathAlertmanager,
// PathCloudEye), so mount it at "/api/v1/" of a ServeMux.
func NewHandler(o Options) (http.Handler, error) {
	if err := checkToken("token", o.Token); err != nil {
		return nil, fmt.Errorf("trigger: %w", err)
	}
	if o.Submitter == nil || o.Reader == nil {
		return nil, errors.New("trigger: Submitter and Reader are required")
	}
	if o.MaxBody <= 0 {
		o.MaxBody = DefaultMaxBody
	}
	if o.Rate == 0 {
		o.Rate = DefaultRate
	}
	if o.Burst <= 0 {
		o.Burst = DefaultBurst
	}
	if len(o.AlertmanagerInstanceLabels) == 0 {
		o.AlertmanagerInstanceLabels = []string{"instance_id", "dcs_instance_id"}
	}
	if len(o.AlertmanagerNodeLabels) == 0 {
		o.AlertmanagerNodeLabels = []string{"node_id", "dcs_node_id"}
	}
	if len(o.CloudEyeInstanceKeys) == 0 {
		o.CloudEyeInstanceKeys = []string{"dcs_instance_id", "instance_id", "resource_id"}
	}
	if len(o.CloudEyeNodeKeys) == 0 {
		o.CloudEyeNodeKeys = []string{"dcs_node_id", "node_id", "dcs_cluster_redis_node",
			"dcs_cluster_proxy_node", "dcs_cluster_proxy2_node"}
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.TokenFile != "" {
		if fi, err := os.Stat(o.TokenFile); err == nil && fi.Mode().Perm()&0o004 != 0 {
			o.Log.Warn().Str("file", o.TokenFile).Str("mode", fi.Mode().Perm().String()).
				Msg("trigger token file is readable by every user; chmod 600 it")
		}
	}
	h := &handler{o: o, digest: sha256.Sum256([]byte(o.Token)), mux: http.NewServeMux(),
		limiter: newIPLimiter(o.Rate, o.Burst), certs: newCertCache()}
	if o.Registerer != nil {
		h.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dcsjobs_trigger_requests_total",
			Help: "Requests to the trigger API by endpoint and HTTP status code.",
		}, []string{"endpoint", "code"})
		if err := o.Registerer.Register(h.requests); err != nil {
			return nil, fmt.Errorf("trigger: register metrics: %w", err)
		}
	}
	h.route(PathQueries, "queries", http.MethodPost, false, h.postQueries)
	h.route(PathQueries+"/{id}", "status", http.MethodGet, false, h.getStatus)
	h.route(PathQueries+"/{id}/result", "result", http.MethodGet, false, h.getResult)
	h.route(PathAlertmanager, "alertmanager", http.MethodPost, false, h.postAlertmanager)
	h.route(PathCloudEye, "cloudeye", http.MethodPost, true, h.postCloudEye)
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.serve(w, r, "other", "", false, func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusNotFound, "no such endpoint")
		})
	})
	return h, nil
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func (h *handler) route(pattern, endpoint, method string, queryToken bool, fn http.HandlerFunc) {
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		h.serve(w, r, endpoint, method, queryToken, fn)
	})
}

// serve runs the checks every endpoint shares, in this order: rate limit
// (before auth, to slow guessing), method, authentication, body size.
func (h *handler) serve(w http.ResponseWriter, r *http.Request, endpoint, method string, queryToken bool, fn http.HandlerFunc) {
	rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
	defer func() {
		if h.requests != nil {
			h.requests.WithLabelValues(endpoint, strconv.Itoa(rec.code)).Inc()
		}
	}()
	w = rec
	if ok, wait := h.limiter.allow(clientIP(r), h.o.Now()); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		writeError(w, http.StatusTooManyRequests, "too many requests")
		return
	}
	if method != "" && r.Method != method {
		w.Header().Set("Allow", method)
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; use "+method)
		return
	}
	if !h.authorized(r, queryToken) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="dcsjobs"`)
		writeError(w, http.StatusUnauthorized, "unauthorized")
		return
	}
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, h.o.MaxBody)
	}
	fn(w, r)
}

// authorized checks the bearer token (or, where allowed, ?token=). Missing,
// malformed and wrong credentials are indistinguishable to the caller.
func (h *handler) authorized(r *http.Request, queryToken bool) bool {
	if a := r.Header.Get("Authorization"); a != "" {
		scheme, tok, ok := strings.Cut(a, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return false
		}
		return h.tokenOK(strings.TrimSpace(tok))
	}
	if queryToken {
		if tok := r.URL.Query().Get("token"); tok != "" {
			return h.tokenOK(tok)
		}
	}
	return false
}

// tokenOK compares SHA-256 digests, so the comparison takes the same time
// whatever the length or content of the guess.
func (h *handler) tokenOK(tok string) bool {
	d := sha256.Sum256([]byte(tok))
	return subtle.ConstantTimeCompare(d[:], h.digest[:]) == 1
}

// readBody reads the (size-limited) body; on failure it has answered already.
func (h *handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(r.Body)
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", h.o.MaxBody))
		return nil, false
	case err != nil:
		writeError(w, http.StatusBadRequest, "reading the body: "+err.Error())
		return nil, false
	case len(strings.TrimSpace(string(b))) == 0:
		writeError(w, http.StatusBadRequest, "body is empty")
		return nil, false
	}
	return b, true
}

// statusRecorder remembers the status code for the metrics.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// errorBody is every error answer: {"error":"<reason>"}.
type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, reason string) {
	writeJSON(w, code, errorBody{Error: reason})
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// ipLimiter is a token bucket per client IP. Buckets idle for longer than
// idleAfter are dropped, and at most maxClients are kept: beyond that, new
// clients share one bucket, so a flood of source addresses cannot grow memory
// without bound.
type ipLimiter struct {
	mu        sync.Mutex
	r         rate.Limit
	burst     int
	clients   map[string]*bucket
	overflow  *rate.Limiter
	lastSweep time.Time
}

type bucket struct {
	l    *rate.Limiter
	seen time.Time
}

const (
	maxClients = 10000
	idleAfter  = 5 * time.Minute
)

func newIPLimiter(r rate.Limit, burst int) *ipLimiter {
	return &ipLimiter{r: r, burst: burst, clients: map[string]*bucket{}, overflow: rate.NewLimiter(r, burst)}
}

// allow takes a token for ip; when none is left it reports how long to wait.
func (l *ipLimiter) allow(ip string, now time.Time) (bool, time.Duration) {
	if l.r == rate.Inf {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) > time.Minute {
		l.lastSweep = now
		for k, b := range l.clients {
			if now.Sub(b.seen) > idleAfter {
				delete(l.clients, k)
			}
		}
	}
	b := l.clients[ip]
	var lim *rate.Limiter
	switch {
	case b != nil:
		b.seen = now
		lim = b.l
	case len(l.clients) < maxClients:
		lim = rate.NewLimiter(l.r, l.burst)
		l.clients[ip] = &bucket{l: lim, seen: now}
	default:
		lim = l.overflow
	}
	res := lim.ReserveN(now, 1)
	if !res.OK() {
		return false, time.Second
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, max(d, time.Second)
	}
	return true, 0
}
