// Package console is a small web console of the audits, served by the
// worker's HTTP server under one path prefix (default "/console/"): for an
// SRE chasing a connection leak, the sessions themselves rather than the
// dashboards' numbers.
//
// Pages (all GET, rendered on the server with html/template; no JavaScript):
//
//	{prefix}                          every audited node, oldest audit first, with
//	                                  its freshness, sessions, idle sessions, client
//	                                  IPs and findings
//	{prefix}nodes/{instance}/{node}   the latest snapshot: times, job, summary with
//	                                  bar charts, findings, the diff against the
//	                                  previous audit, the history, and the session
//	                                  table (all 21 DCS fields)
//	{prefix}requests/{id}             a request through the pipeline: stages,
//	                                  timeline, error, children of all-nodes requests
//	{prefix}assets/…                  the stylesheet and icon (embedded)
//
// The node page takes these query parameters, so that sorting, filtering and
// paging work without scripts and every view has a URL:
//
//	sort=<field>    any DCS field name (id, addr, idle, omem, …); default DCS order
//	order=asc|desc  default asc (a column header's first click sorts numbers desc)
//	addr, name, user, cmd   case-insensitive substring filters
//	db              exact db index
//	page=N          1-based; PageSize rows a page (default 100)
//	snapshot=ID     a history entry instead of the latest (its diff is shown)
//
// Sorting and filtering run in Go on the decoded snapshot, which is cached for
// 30 s by snapshot id (a snapshot never changes under its id), with each sort
// order computed once per cached snapshot: paging through 50,000 sessions does
// not read Redis again (BenchmarkNodePage50k).
//
// Freshness colours of the overview follow Options.AuditInterval (default
// 15m): green under 2 intervals, amber under 3 (45 min by default, the age at
// which the "node not audited" alert fires), red beyond.
//
// # Security
//
// Everything from DCS (client names, commands, users, addresses) comes from
// whoever connected to Redis and is untrusted: every value goes through
// html/template's contextual escaping, no value becomes template.HTML, and
// bar widths are CSS classes, not inline styles. Every response carries
//
//	Content-Security-Policy: default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'
//	X-Frame-Options: DENY
//	X-Content-Type-Options: nosniff
//	Referrer-Policy: no-referrer
//
// and pages are Cache-Control: no-store. The console is read-only unless
// Options.Submit is set; then the node page has a "query now" form whose
// token (the trigger API's) is compared in constant time, and a request that
// a browser marks as cross-site (Sec-Fetch-Site, Origin or Referer of another
// host) is refused. Authentication and TLS are the HTTP server's: mount the
// handler on the worker's server so that the web config (basic auth, TLS)
// protects it as it protects /metrics.
//
// Ids in paths are validated (dcsapi.ValidateID, tasks.ValidateRequestID);
// a bad or unknown id is a 404 page, a Redis error a 503 page without detail
// (Options.OnError receives it).
//
// Example, in the worker's wiring:
//
//	h, err := console.NewHandler(console.Options{Store: store, Requests: reqs})
//	if err != nil {
//		return err
//	}
//	mux.Handle(console.DefaultPrefix, h)
package console
