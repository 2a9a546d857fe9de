package dcsapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// ScanClients starts a job that collects the session list of one node
// (POST /v2/{project_id}/instances/{instance_id}/clients) and returns its
// job_id. cleanCache true asks DCS to re-query rather than reuse a stored list.
// A second scan of a node while one runs is refused with DCS.4957 (transient).
func (c *Client) ScanClients(ctx context.Context, instanceID, nodeID string, cleanCache bool) (string, error) {
	if err := validateIDs("instance_id", instanceID, "node_id", nodeID); err != nil {
		return "", fmt.Errorf("dcs %s: %w", OpScanClients, err)
	}
	in := struct {
		NodeID     string `json:"node_id"`
		CleanCache bool   `json:"clean_cache"`
	}{nodeID, cleanCache}
	var out struct {
		JobID FlexString `json:"job_id"`
	}
	if err := c.do(ctx, OpScanClients, http.MethodPost, c.path("instances", instanceID, "clients"), nil, in, &out); err != nil {
		return "", err
	}
	id := string(out.JobID)
	if err := ValidateID("job_id", id); err != nil {
		return "", &DecodeError{Op: OpScanClients, Err: fmt.Errorf("response has no usable job_id: %w", err)}
	}
	return id, nil
}

// ShowJobInfo reads a job (GET /v2/{project_id}/jobs/{job_id}). Whether scan
// jobs are visible here is UNCONFIRMED: check IsJobNotFound on the error.
func (c *Client) ShowJobInfo(ctx context.Context, jobID string) (*Job, error) {
	if err := ValidateID("job_id", jobID); err != nil {
		return nil, fmt.Errorf("dcs %s: %w", OpShowJobInfo, err)
	}
	var j Job
	if err := c.do(ctx, OpShowJobInfo, http.MethodGet, c.path("jobs", jobID), nil, nil, &j); err != nil {
		return nil, err
	}
	if j.Status == "" {
		return nil, &DecodeError{Op: OpShowJobInfo, Err: errors.New("response has no status")}
	}
	return &j, nil
}

// Sort orders of ListClients.
const (
	OrderAsc  = "asc"
	OrderDesc = "desc"
)

// MaxPageSize is the largest page ListClients serves.
const MaxPageSize = 1000

// ListClientsOptions are the optional query parameters of ListClients.
type ListClientsOptions struct {
	// Offset is the first session to return (>= 0).
	Offset int
	// Limit is the page size, 1..1000; 0 means the service default (10) for
	// ListClients and 1000 for ListAllClients.
	Limit int
	// Sort names a ClientInfo field to sort on, e.g. "idle"; empty: unsorted.
	Sort string
	// Order is "asc" or "desc" (with Sort).
	Order string
	// Addr filters on the client address.
	Addr string
}

func (o ListClientsOptions) query(nodeID string) (url.Values, error) {
	q := url.Values{"node_id": {nodeID}}
	if o.Offset < 0 {
		return nil, fmt.Errorf("offset %d is negative", o.Offset)
	}
	if o.Limit < 0 || o.Limit > MaxPageSize {
		return nil, fmt.Errorf("limit %d is out of range 1..%d", o.Limit, MaxPageSize)
	}
	if o.Order != "" && o.Order != OrderAsc && o.Order != OrderDesc {
		return nil, fmt.Errorf("order %q is invalid: want asc or desc", o.Order)
	}
	if o.Sort != "" && !sortableFields[o.Sort] {
		return nil, fmt.Errorf("sort %q is not a ClientInfo field", o.Sort)
	}
	q.Set("offset", strconv.Itoa(o.Offset))
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Sort != "" {
		q.Set("sort", o.Sort)
	}
	if o.Order != "" {
		q.Set("order", o.Order)
	}
	if o.Addr != "" {
		q.Set("addr", o.Addr)
	}
	return q, nil
}

var sortableFields = map[string]bool{
	"id": true, "addr": true, "fd": true, "name": true, "cmd": true, "age": true, "idle": true, "db": true,
	"flags": true, "sub": true, "psub": true, "multi": true, "qbuf": true, "qbuf_free": true, "obl": true,
	"oll": true, "omem": true, "events": true, "network": true, "peer": true, "user": true,
}

// ListClients reads one page of the session list of a node (GET
// /v2/{project_id}/instances/{instance_id}/clients). The list exists only after
// a scan of that node has succeeded; before, DCS answers HTTP 500.
func (c *Client) ListClients(ctx context.Context, instanceID, nodeID string, opts ListClientsOptions) (*ClientList, error) {
	if err := validateIDs("instance_id", instanceID, "node_id", nodeID); err != nil {
		return nil, fmt.Errorf("dcs %s: %w", OpListClients, err)
	}
	q, err := opts.query(nodeID)
	if err != nil {
		return nil, fmt.Errorf("dcs %s: %w", OpListClients, err)
	}
	var l ClientList
	if err := c.do(ctx, OpListClients, http.MethodGet, c.path("instances", instanceID, "clients"), q, nil, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// ErrSnapshotChanged means the session list changed under ListAllClients on
// every attempt (a scan kept completing while pages were read). Transient.
var ErrSnapshotChanged = errors.New("session list changed while it was being read")

// maxPrealloc caps the capacity reserved from an untrusted count.
const maxPrealloc = 100_000

// maxSnapshotRestarts bounds how often ListAllClients starts over.
const maxSnapshotRestarts = 3

// ListAllClients reads every page (Limit per page, default 1000) of a node's
// session list into one ClientList. If the snapshot changes between pages (its
// time or count moves), reading starts over, at most 3 times, then fails with
// ErrSnapshotChanged. Offset in opts is ignored.
func (c *Client) ListAllClients(ctx context.Context, instanceID, nodeID string, opts ListClientsOptions) (*ClientList, error) {
	if opts.Limit == 0 {
		opts.Limit = MaxPageSize
	}
	for attempt := 0; attempt <= maxSnapshotRestarts; attempt++ {
		all, changed, err := c.readPages(ctx, instanceID, nodeID, opts)
		if err != nil || !changed {
			return all, err
		}
	}
	return nil, fmt.Errorf("dcs %s: node %s: %w", OpListClients, nodeID, ErrSnapshotChanged)
}

func (c *Client) readPages(ctx context.Context, instanceID, nodeID string, opts ListClientsOptions) (*ClientList, bool, error) {
	opts.Offset = 0
	first, err := c.ListClients(ctx, instanceID, nodeID, opts)
	if err != nil {
		return nil, false, err
	}
	all := &ClientList{Time: first.Time, Count: first.Count, Clients: make([]ClientInfo, 0, min(max(first.Count, int64(len(first.Clients))), maxPrealloc))}
	all.Clients = append(all.Clients, first.Clients...)
	page := first
	// The page count is bounded by the first count; an empty page ends early.
	for int64(len(all.Clients)) < all.Count && len(page.Clients) > 0 {
		opts.Offset = len(all.Clients)
		if page, err = c.ListClients(ctx, instanceID, nodeID, opts); err != nil {
			return nil, false, err
		}
		if page.Count != all.Count || page.Time.Raw != all.Time.Raw {
			return nil, true, nil
		}
		all.Clients = append(all.Clients, page.Clients...)
	}
	if int64(len(all.Clients)) > all.Count {
		all.Clients = all.Clients[:all.Count]
	}
	return all, false, nil
}
