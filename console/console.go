package console

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/dcsjobs/dcsjobs/dcsapi"
	"github.com/dcsjobs/dcsjobs/results"
	"github.com/dcsjobs/dcsjobs/tasks"
)

// Defaults of Options.
const (
	DefaultPrefix        = "/console/"
	DefaultPageSize      = 100
	DefaultAuditInterval = 15 * time.Minute
	// MaxPageSize caps Options.PageSize: a page of the session table is
	// rendered whole, 21 cells a row.
	MaxPageSize = 1000
)

// Options configure the console. Store and Requests are required.
type Options struct {
	// Prefix is the path the console is served under, with a leading and a
	// trailing slash; every link the console renders starts with it. Empty
	// means DefaultPrefix ("/console/"); a missing trailing slash is added.
	// Mount the handler on exactly this path (mux.Handle(prefix, h)); it
	// expects full request paths, not stripped ones.
	Prefix string
	// Store reads snapshots (required).
	Store *results.Store
	// Requests reads request records for the request page (required).
	Requests *tasks.Requests
	// Submit, when non-nil, enables the "query now" form of the node page:
	// it posts the token the user types, compared in constant time with
	// Token, and a match calls Submit with Origin tasks.OriginTrigger. nil
	// (the default) makes the console read-only: no form, and POST answers
	// 405. Hazard: anyone who can reach the console and knows Token can make
	// DCS calls; serve it behind the web config's basic auth.
	Submit func(ctx context.Context, o tasks.SubmitOptions) (*tasks.Request, error)
	// Token is the credential of the "query now" form (the trigger API's
	// token). Required when Submit is set; NewHandler refuses an empty one.
	Token string
	// Now is the clock used for ages and freshness; nil means time.Now.
	Now func() time.Time
	// PageSize is the number of sessions per page of a node's table. Zero
	// means DefaultPageSize (100); at most MaxPageSize.
	PageSize int
	// AuditInterval is how often nodes are expected to be audited; it sets
	// the freshness colours of the overview: an audit younger than 2
	// intervals is fresh (green), younger than 3 late (amber), older stale
	// (red). Zero means DefaultAuditInterval (15m), which makes "stale" match
	// the 45-minute "node not audited" alert.
	AuditInterval time.Duration
	// OnError, when non-nil, is told about every error answered with a 5xx
	// status (to log it); the page itself shows no detail.
	OnError func(r *http.Request, err error)
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// handler is the console. It holds no per-request state besides the cache.
type handler struct {
	o       Options
	prefix  string
	pages   map[string]*template.Template
	assets  http.Handler
	cache   *snapCache
	now     func() time.Time
	trigger bool
}

// NewHandler returns the console's handler, to be mounted on o.Prefix.
func NewHandler(o Options) (http.Handler, error) {
	if o.Store == nil || o.Requests == nil {
		return nil, errors.New("console: Options.Store and Options.Requests are required")
	}
	if o.Submit != nil && o.Token == "" {
		return nil, errors.New("console: Options.Token is empty but Submit is set: the query form would accept any token")
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if !strings.HasPrefix(o.Prefix, "/") || strings.ContainsAny(o.Prefix, "?#\"'<> \t\r\n") {
		return nil, fmt.Errorf("console: Options.Prefix %q must be a path starting with '/'", o.Prefix)
	}
	if !strings.HasSuffix(o.Prefix, "/") {
		o.Prefix += "/"
	}
	switch {
	case o.PageSize == 0:
		o.PageSize = DefaultPageSize
	case o.PageSize < 0 || o.PageSize > MaxPageSize:
		return nil, fmt.Errorf("console: Options.PageSize %d is out of range 1..%d", o.PageSize, MaxPageSize)
	}
	if o.AuditInterval <= 0 {
		o.AuditInterval = DefaultAuditInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	h := &handler{o: o, prefix: o.Prefix, pages: map[string]*template.Template{}, now: o.Now,
		cache: newSnapCache(cacheTTL, cacheMaxSessions, o.Now), trigger: o.Submit != nil}
	for _, name := range []string{"overview", "node", "request", "error"} {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", name, err)
		}
		h.pages[name] = t
	}
	sub, err := fs.Sub(assetFS, "assets")
	if err != nil {
		return nil, err
	}
	h.assets = http.StripPrefix(o.Prefix+"assets/", http.FileServerFS(sub))
	return h, nil
}

// securityHeaders are set on every response. There is no JavaScript at all,
// so no script-src: the default 'none' forbids every script.
var securityHeaders = map[string]string{
	"Content-Security-Policy":      "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
	"X-Frame-Options":              "DENY",
	"X-Content-Type-Options":       "nosniff",
	"Referrer-Policy":              "no-referrer",
	"Cross-Origin-Opener-Policy":   "same-origin",
	"Cross-Origin-Resource-Policy": "same-origin",
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for k, v := range securityHeaders {
		w.Header().Set(k, v)
	}
	path := r.URL.Path
	if path+"/" == h.prefix {
		http.Redirect(w, r, h.prefix, http.StatusMovedPermanently)
		return
	}
	rest, ok := strings.CutPrefix(path, h.prefix)
	if !ok {
		h.notFound(w, r)
		return
	}
	if a, ok := strings.CutPrefix(rest, "assets/"); ok && a != "" {
		if !h.readOnly(w, r) {
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=300")
		h.assets.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	switch {
	case rest == "":
		if h.readOnly(w, r) {
			h.overview(w, r)
		}
	case strings.HasPrefix(rest, "nodes/"):
		parts := strings.Split(rest[len("nodes/"):], "/")
		if len(parts) < 2 || len(parts) > 3 || !validNode(parts[0], parts[1]) {
			h.notFound(w, r)
			return
		}
		if len(parts) == 3 {
			switch {
			case parts[2] != "query":
				h.notFound(w, r)
			case h.trigger:
				h.query(w, r, parts[0], parts[1])
			case h.readOnly(w, r): // read-only: POST is 405, GET finds nothing
				h.notFound(w, r)
			}
			return
		}
		if h.readOnly(w, r) {
			h.node(w, r, parts[0], parts[1])
		}
	case strings.HasPrefix(rest, "requests/"):
		id := rest[len("requests/"):]
		if tasks.ValidateRequestID(id) != nil {
			h.notFound(w, r)
			return
		}
		if h.readOnly(w, r) {
			h.request(w, r, id)
		}
	default:
		h.notFound(w, r)
	}
}

// readOnly answers 405 to anything but GET and HEAD, and reports whether the
// request may go on.
func (h *handler) readOnly(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	h.errorPage(w, r, http.StatusMethodNotAllowed, "Method not allowed", "This page is read-only.", nil)
	return false
}

func validNode(inst, node string) bool {
	return dcsapi.ValidateID("instance id", inst) == nil && dcsapi.ValidateID("node id", node) == nil
}

// base is what every page's layout needs.
type base struct {
	Title    string
	Prefix   string
	Crumbs   []crumb
	Refresh  int // seconds; 0: no automatic refresh
	Trigger  bool
	Rendered time.Time
}

type crumb struct{ Label, Href string }

func (h *handler) base(title string, crumbs ...crumb) base {
	return base{Title: title, Prefix: h.prefix, Crumbs: crumbs, Trigger: h.trigger, Rendered: h.now().UTC()}
}

func (h *handler) nodeHref(inst, node string) string { return h.prefix + "nodes/" + inst + "/" + node }
func (h *handler) requestHref(id string) string      { return h.prefix + "requests/" + id }

// render executes a page into a buffer first, so that a template error is a
// clean 500 and not half a page.
func (h *handler) render(w http.ResponseWriter, r *http.Request, status int, page string, data any) {
	var buf bytes.Buffer
	if err := h.pages[page].ExecuteTemplate(&buf, "layout", data); err != nil {
		if page == "error" { // do not loop
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		h.errorPage(w, r, http.StatusInternalServerError, "Internal error", "The page could not be rendered.", err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

type errorData struct {
	base
	Status  int
	Message string
}

// errorPage renders an error without detail; err goes to OnError for 5xx.
func (h *handler) errorPage(w http.ResponseWriter, r *http.Request, status int, title, msg string, err error) {
	if status >= 500 && err != nil && h.o.OnError != nil {
		h.o.OnError(r, err)
	}
	h.render(w, r, status, "error", errorData{base: h.base(title), Status: status, Message: msg})
}

func (h *handler) notFound(w http.ResponseWriter, r *http.Request) {
	h.errorPage(w, r, http.StatusNotFound, "Not found", "There is nothing here: the address is wrong, or what it named has expired.", nil)
}

// storeError answers a read error: 404 for what does not exist, 503 for the
// rest (Redis unreachable, timeouts), without detail.
func (h *handler) storeError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, results.ErrNotFound), errors.Is(err, tasks.ErrRequestNotFound), errors.Is(err, results.ErrInvalid):
		h.notFound(w, r)
	default:
		h.errorPage(w, r, http.StatusServiceUnavailable, "Store unavailable",
			"The results store (Redis) did not answer. Try again in a moment.", err)
	}
}
