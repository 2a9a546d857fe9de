package console

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkNodePage50k renders a page of a node with 50,000 sessions:
// cached (the decoded snapshot and its sort order are reused, as when an SRE
// pages, sorts and filters), a new sort order on the cached snapshot, a
// filter, and cold (the snapshot is read from Redis and decoded each time).
func BenchmarkNodePage50k(b *testing.B) {
	f := newFixture(b, nil)
	f.save(instA, nodeA, "big", t0.Add(-time.Minute), genClients(50_000), nil)
	base := f.prefix + "nodes/" + instA + "/" + nodeA
	h := f.h.(*handler)
	get := func(b *testing.B, path string) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		if w.Code != http.StatusOK {
			b.Fatalf("GET %s: %d", path, w.Code)
		}
	}
	b.Run("cached", func(b *testing.B) {
		get(b, base+"?sort=idle&order=desc")
		for b.Loop() {
			get(b, base+"?sort=idle&order=desc&page=7")
		}
	})
	b.Run("new-sort", func(b *testing.B) {
		get(b, base)
		for b.Loop() {
			e := h.cache.get(cacheKey(instA, nodeA, "big"))
			e.mu.Lock()
			clear(e.orders)
			e.mu.Unlock()
			get(b, base+"?sort=addr&order=desc&page=3")
		}
	})
	b.Run("filtered", func(b *testing.B) {
		get(b, base)
		for b.Loop() {
			get(b, base+"?name=CACHE&cmd=get&sort=age&order=desc&page=2")
		}
	})
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			h.cache = newSnapCache(cacheTTL, cacheMaxSessions, h.now)
			get(b, base+"?sort=idle&order=desc&page=7")
		}
	})
}
