package dcssim

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// maxBody is the gateway's request-body limit (12 MB, APIGW.0201 / 413).
const maxBody = 12 << 20

// Server is the simulator. It is an http.Handler and safe for concurrent use.
type Server struct {
	cfg Config // normalized; never mutated after New
	inv *Inventory

	mu            sync.Mutex
	faults        Faults
	bucket        bucket
	rng           *rand.Rand
	jobs          map[string]*job
	nodes         map[string]*nodeState
	stats         Stats
	tokens        map[string]*issuedToken
	staticRevoked bool

	redisMu sync.Mutex
	redis   map[string]*redis.Client
}

type issuedToken struct {
	expires time.Time
	revoked bool
}

// Stats are counters since New or the last Reset.
type Stats struct {
	// Calls counts requests per operation name (see Operations); requests
	// that matched no API are counted under "".
	Calls map[string]int `json:"calls"`
	// Statuses counts responses per HTTP status.
	Statuses map[int]int `json:"statuses"`
	// OpStatuses counts responses per operation and HTTP status.
	OpStatuses map[string]map[int]int `json:"op_statuses"`
	// Scans counts accepted ScanClients per ScanKey(instance, node).
	Scans map[string]int `json:"scans"`
	// ActiveJobs is the number of scan jobs in INIT or RUNNING now.
	ActiveJobs int `json:"active_jobs"`
	// Jobs is the number of scan jobs created.
	Jobs int `json:"jobs"`
}

// ScanKey is the key of Stats.Scans.
func ScanKey(instanceID, nodeID string) string { return instanceID + "/" + nodeID }

func newStats() Stats {
	return Stats{Calls: map[string]int{}, Statuses: map[int]int{}, OpStatuses: map[string]map[int]int{}, Scans: map[string]int{}}
}

// New validates cfg and returns a simulator.
func New(cfg Config) (*Server, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: c, inv: c.Inventory, tokens: map[string]*issuedToken{}, redis: map[string]*redis.Client{}}
	s.resetLocked()
	return s, nil
}

func (s *Server) resetLocked() {
	s.faults = s.cfg.Faults.clone()
	s.bucket.configure(s.faults.RateLimit, s.faults.RateBurst)
	s.rng = rand.New(rand.NewPCG(s.cfg.Seed, 0xdc5))
	s.jobs = map[string]*job{}
	s.nodes = map[string]*nodeState{}
	s.stats = newStats()
	s.staticRevoked = false
}

// Reset forgets jobs, session snapshots and stats, restores the configured
// faults and the seeded random sequence, and revives static tokens. Issued
// tokens are kept (credentials are not state); revoked ones stay revoked.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resetLocked()
}

// Faults returns the faults in force (FailNext shows what is left).
func (s *Server) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults.clone()
}

// SetFaults replaces the faults in force and restarts the throttling bucket.
func (s *Server) SetFaults(f Faults) error {
	if err := f.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f.clone()
	s.bucket.configure(f.RateLimit, f.RateBurst)
	return nil
}

// ExpireTokens makes every token issued so far, and the static tokens, answer
// 401 APIGW.0307 from now on. Tokens issued later are valid.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		t.revoked = true
	}
	s.staticRevoked = true
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked(s.cfg.Now())
	out := newStats()
	for k, v := range s.stats.Calls {
		out.Calls[k] = v
	}
	for k, v := range s.stats.Statuses {
		out.Statuses[k] = v
	}
	for op, m := range s.stats.OpStatuses {
		out.OpStatuses[op] = map[int]int{}
		for k, v := range m {
			out.OpStatuses[op][k] = v
		}
	}
	for k, v := range s.stats.Scans {
		out.Scans[k] = v
	}
	out.Jobs = s.stats.Jobs
	for _, n := range s.nodes {
		if n.active != nil {
			out.ActiveJobs++
		}
	}
	return out
}

// Inventory returns a copy of the served inventory (defaults filled in).
func (s *Server) Inventory() *Inventory { return s.inv.clone() }

// ProjectID is the served project ID.
func (s *Server) ProjectID() string { return s.cfg.ProjectID }

// Close closes the connections of live-mode nodes.
func (s *Server) Close() error {
	s.redisMu.Lock()
	defer s.redisMu.Unlock()
	for k, c := range s.redis {
		c.Close()
		delete(s.redis, k)
	}
	return nil
}

func newRequestID() string {
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		v := rand.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return hex.EncodeToString(b[:])
}

// route names the operation of a request and extracts its path parameters.
type route struct {
	op         string
	project    string
	instanceID string
	jobID      string
}

func parseRoute(method, path string) (route, bool) {
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if len(segs) == 3 && segs[0] == "v3" && segs[1] == "auth" && segs[2] == "tokens" && method == http.MethodPost {
		return route{op: OpCreateToken}, true
	}
	if len(segs) < 3 || segs[0] != "v2" {
		return route{}, false
	}
	r := route{project: segs[1]}
	switch {
	case len(segs) == 3 && segs[2] == "instances" && method == http.MethodGet:
		r.op = OpListInstances
	case len(segs) == 4 && segs[2] == "instances" && method == http.MethodGet:
		r.op, r.instanceID = OpShowInstance, segs[3]
	case len(segs) == 5 && segs[2] == "instances" && segs[4] == "clients" && method == http.MethodPost:
		r.op, r.instanceID = OpScanClients, segs[3]
	case len(segs) == 5 && segs[2] == "instances" && segs[4] == "clients" && method == http.MethodGet:
		r.op, r.instanceID = OpListClients, segs[3]
	case len(segs) == 5 && segs[2] == "instances" && segs[4] == "logical-nodes" && method == http.MethodGet:
		r.op, r.instanceID = OpListLogicalNodes, segs[3]
	case len(segs) == 4 && segs[2] == "jobs" && method == http.MethodGet:
		r.op, r.jobID = OpShowJobInfo, segs[3]
	default:
		return route{}, false
	}
	return r, true
}

// ServeHTTP answers like the DCS API behind the Huawei API gateway, plus the
// /_sim/ admin API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := newRequestID()
	if strings.HasPrefix(r.URL.Path, "/_sim/") {
		s.serveAdmin(w, r)
		return
	}
	rt, ok := parseRoute(r.Method, r.URL.Path)
	if !ok {
		s.write(w, r, reqID, "", errNoAPI(), false, false)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		s.write(w, r, reqID, rt.op, gwErr(400, "APIGW.0201", "Request error: "+err.Error()), false, false)
		return
	}
	if len(body) > maxBody {
		s.write(w, r, reqID, rt.op, errTooLarge(), false, false)
		return
	}
	now := s.cfg.Now()
	if rt.op != OpCreateToken && !s.cfg.AuthDisabled {
		if rs, ok := s.authenticate(r, body, now); !ok {
			s.write(w, r, reqID, rt.op, rs, false, false)
			return
		}
	}

	// Gateway-side faults.
	s.mu.Lock()
	f := s.faults
	var fault *resp
	var latency time.Duration
	truncate, malformed := false, false
	if f.applies(rt.op) {
		latency = time.Duration(f.Latency)
		switch {
		case !s.bucket.allow(now):
			rs := gwErr(429, "APIGW.0308", fmt.Sprintf(
				"The throttling threshold has been reached: policy user over ratelimit,limit:%s,time:1 second",
				strconv.FormatFloat(f.RateLimit, 'f', -1, 64)))
			if f.RetryAfter > 0 {
				rs.header = http.Header{"Retry-After": {strconv.Itoa(f.RetryAfter)}}
			}
			fault = &rs
		case f.FailNext > 0:
			s.faults.FailNext--
			rs := statusFault(f.FailNextStatus)
			fault = &rs
		case f.ErrorShare > 0 && s.rng.Float64() < f.ErrorShare:
			rs := statusFault([]int{500, 502, 503}[s.rng.IntN(3)])
			fault = &rs
		}
		if fault == nil {
			truncate = f.TruncateShare > 0 && s.rng.Float64() < f.TruncateShare
			malformed = !truncate && f.MalformedShare > 0 && s.rng.Float64() < f.MalformedShare
		}
	}
	s.mu.Unlock()
	if latency > 0 {
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
		}
	}
	if fault != nil {
		s.write(w, r, reqID, rt.op, *fault, false, false)
		return
	}

	var rs resp
	switch {
	case rt.op == OpCreateToken:
		rs = s.createToken(body, now)
	case rt.project != s.cfg.ProjectID:
		rs = errProjectMismatch()
	default:
		rs = s.dispatch(r.Context(), rt, r, body, now)
	}
	s.write(w, r, reqID, rt.op, rs, truncate, malformed)
}

func statusFault(status int) resp {
	switch status {
	case 502:
		return errBadGateway()
	case 503:
		return errUnavailable()
	default:
		return errInternal()
	}
}

func (s *Server) dispatch(ctx context.Context, rt route, r *http.Request, body []byte, now time.Time) resp {
	switch rt.op {
	case OpScanClients:
		return s.scanClients(ctx, rt.instanceID, body, now)
	case OpListClients:
		return s.listClients(rt.instanceID, r.URL.Query(), now)
	case OpShowJobInfo:
		return s.showJob(rt.jobID, now)
	case OpListInstances:
		return s.listInstances(r.URL.Query())
	case OpShowInstance:
		return s.showInstance(rt.instanceID)
	case OpListLogicalNodes:
		return s.logicalNodes(rt.instanceID)
	}
	return errNoAPI()
}

const htmlBody = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"

// write encodes rs, records stats and log, and applies body faults.
func (s *Server) write(w http.ResponseWriter, r *http.Request, reqID, op string, rs resp, truncate, malformed bool) {
	if ge, ok := rs.body.(*gwError); ok {
		ge.RequestID = reqID
	}
	b, err := json.Marshal(rs.body)
	if err != nil {
		rs, b = errInternal(), []byte(`{"error_code":"DCS.5000","error_msg":"Internal service error.","error_ext_msg":null}`)
	}
	h := w.Header()
	for k, v := range rs.header {
		h[k] = v
	}
	h.Set("Content-Type", "application/json;charset=UTF-8")
	h.Set("X-Request-Id", reqID)
	h.Set("Server", "api-gateway")
	full := len(b)
	switch {
	case malformed:
		b = []byte(htmlBody)
		full = len(b)
		h.Set("Content-Type", "text/html")
	case truncate:
		b = b[:len(b)/2]
	}
	h.Set("Content-Length", strconv.Itoa(full))

	s.mu.Lock()
	s.stats.Calls[op]++
	s.stats.Statuses[rs.status]++
	if s.stats.OpStatuses[op] == nil {
		s.stats.OpStatuses[op] = map[int]int{}
	}
	s.stats.OpStatuses[op][rs.status]++
	s.mu.Unlock()
	if l := s.cfg.Logger; l != nil {
		l.Info("request", "op", op, "method", r.Method, "path", r.URL.Path, "status", rs.status,
			"request_id", reqID, "truncated", truncate, "malformed", malformed)
	}
	w.WriteHeader(rs.status)
	if r.Method != http.MethodHead {
		w.Write(b)
	}
}

// serveAdmin answers the /_sim/ API (no auth).
func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	reply := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	type msg struct {
		Error string `json:"error,omitempty"`
		OK    bool   `json:"ok,omitempty"`
	}
	switch r.Method + " " + r.URL.Path {
	case "GET /_sim/faults":
		reply(200, s.Faults())
	case "PUT /_sim/faults":
		var f Faults
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			reply(400, msg{Error: "faults: " + err.Error()})
			return
		}
		if err := s.SetFaults(f); err != nil {
			reply(400, msg{Error: "faults: " + err.Error()})
			return
		}
		reply(200, s.Faults())
	case "GET /_sim/stats":
		reply(200, s.Stats())
	case "GET /_sim/inventory":
		reply(200, s.Inventory())
	case "POST /_sim/reset":
		s.Reset()
		reply(200, msg{OK: true})
	case "POST /_sim/expire-tokens":
		s.ExpireTokens()
		reply(200, msg{OK: true})
	default:
		reply(404, msg{Error: fmt.Sprintf("no admin endpoint %s %s; have GET|PUT /_sim/faults, GET /_sim/stats, GET /_sim/inventory, POST /_sim/reset, POST /_sim/expire-tokens", r.Method, r.URL.Path)})
	}
}

// redisClient returns the cached client of a live node.
func (s *Server) redisClient(n *Node) *redis.Client {
	s.redisMu.Lock()
	defer s.redisMu.Unlock()
	if c, ok := s.redis[n.ID]; ok {
		return c
	}
	c := redis.NewClient(&redis.Options{Addr: n.RedisAddr, Password: n.RedisPassword,
		DialTimeout: 2 * time.Second, ReadTimeout: 3 * time.Second, MaxRetries: 1, PoolSize: 2})
	s.redis[n.ID] = c
	return c
}

// fetchLive runs CLIENT LIST on a live node.
func (s *Server) fetchLive(ctx context.Context, n *Node) ([]Client, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	text, err := s.redisClient(n).ClientList(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("CLIENT LIST on %s: %w", n.RedisAddr, err)
	}
	return parseClientList(text, n.IP+":"+strconv.Itoa(n.Port)), nil
}
