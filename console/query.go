package console

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"net/url"

	"github.com/dcsjobs/dcsjobs/tasks"
)

// maxFormBytes bounds the body of the query form (a token and a checkbox).
const maxFormBytes = 8 << 10

// query handles POST {prefix}nodes/{instance}/{node}/query (only mounted
// when Options.Submit is set). The token in the form is the credential: the
// console sets no cookie, so a cross-site form cannot carry it. On top of
// that, a request that says it comes from another site (Sec-Fetch-Site,
// Origin or Referer naming another host) is refused.
func (h *handler) query(w http.ResponseWriter, r *http.Request, inst, node string) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		h.errorPage(w, r, http.StatusMethodNotAllowed, "Method not allowed", "Queries are started with the form of the node page.", nil)
		return
	}
	if !sameOrigin(r) {
		h.forbidden(w, r)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		h.errorPage(w, r, http.StatusBadRequest, "Bad request", "The form could not be read.", nil)
		return
	}
	if !h.tokenOK(r.PostForm.Get("token")) {
		h.forbidden(w, r)
		return
	}
	req, err := h.o.Submit(r.Context(), tasks.SubmitOptions{InstanceID: inst, NodeID: node,
		CleanCache: r.PostForm.Get("clean_cache") == "1", Origin: tasks.OriginTrigger})
	if err != nil {
		h.errorPage(w, r, http.StatusServiceUnavailable, "Query not submitted",
			"The query could not be submitted. Try again in a moment.", err)
		return
	}
	http.Redirect(w, r, h.requestHref(req.ID), http.StatusSeeOther)
}

// tokenOK compares digests in constant time, so neither the token's content
// nor its length leaks through timing.
func (h *handler) tokenOK(got string) bool {
	a := sha256.Sum256([]byte(got))
	b := sha256.Sum256([]byte(h.o.Token))
	return got != "" && subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

func (h *handler) forbidden(w http.ResponseWriter, r *http.Request) {
	h.errorPage(w, r, http.StatusForbidden, "Forbidden", "The query was refused.", nil)
}

// sameOrigin refuses requests a browser marks as cross-site. Each header is
// checked only when present: Referrer-Policy no-referrer makes browsers send
// "Origin: null" and no Referer with the console's own form, and clients such
// as curl send neither (the token still has to match).
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	for _, hdr := range []string{"Origin", "Referer"} {
		v := r.Header.Get(hdr)
		if v == "" || v == "null" {
			continue
		}
		u, err := url.Parse(v)
		if err != nil || u.Host != r.Host {
			return false
		}
	}
	return true
}
