package dcsapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// ListInstancesOptions filter ListInstances.
type ListInstancesOptions struct {
	InstanceID string
	Name       string
	Status     string
	// Offset and Limit page the result; Limit 0 means the service default.
	Offset int
	Limit  int
}

// InstanceList is a page of ListInstances.
type InstanceList struct {
	// Count is the total number of instances matching the filter.
	Count     int64
	Instances []Instance
}

// ListInstances lists the project's instances (GET /v2/{project_id}/instances).
func (c *Client) ListInstances(ctx context.Context, opts ListInstancesOptions) (*InstanceList, error) {
	q := url.Values{}
	if opts.InstanceID != "" {
		if err := ValidateID("instance_id", opts.InstanceID); err != nil {
			return nil, fmt.Errorf("dcs %s: %w", OpListInstances, err)
		}
		q.Set("instance_id", opts.InstanceID)
	}
	if opts.Name != "" {
		q.Set("name", opts.Name)
	}
	if opts.Status != "" {
		q.Set("status", opts.Status)
	}
	if opts.Offset < 0 || opts.Limit < 0 {
		return nil, fmt.Errorf("dcs %s: offset and limit must not be negative", OpListInstances)
	}
	if opts.Offset > 0 {
		q.Set("offset", strconv.Itoa(opts.Offset))
	}
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	var out struct {
		InstanceNum FlexInt    `json:"instance_num"`
		Instances   []Instance `json:"instances"`
	}
	if err := c.do(ctx, OpListInstances, http.MethodGet, c.path("instances"), q, nil, &out); err != nil {
		return nil, err
	}
	return &InstanceList{Count: int64(out.InstanceNum), Instances: out.Instances}, nil
}

// ListAllInstances reads every page of ListInstances (100 per page).
func (c *Client) ListAllInstances(ctx context.Context, opts ListInstancesOptions) ([]Instance, error) {
	const page = 100
	opts.Limit, opts.Offset = page, 0
	var all []Instance
	for {
		l, err := c.ListInstances(ctx, opts)
		if err != nil {
			return nil, err
		}
		all = append(all, l.Instances...)
		if len(l.Instances) == 0 || int64(len(all)) >= l.Count {
			return all, nil
		}
		opts.Offset = len(all)
	}
}

// ShowInstance reads one instance (GET /v2/{project_id}/instances/{instance_id}),
// including cache_mode and max_clients.
func (c *Client) ShowInstance(ctx context.Context, instanceID string) (*Instance, error) {
	if err := ValidateID("instance_id", instanceID); err != nil {
		return nil, fmt.Errorf("dcs %s: %w", OpShowInstance, err)
	}
	var in Instance
	if err := c.do(ctx, OpShowInstance, http.MethodGet, c.path("instances", instanceID), nil, nil, &in); err != nil {
		return nil, err
	}
	return &in, nil
}

// ListLogicalNodes lists the logical nodes of an instance (GET
// /v2/{project_id}/instances/{instance_id}/logical-nodes). Instances still
// being created have none.
func (c *Client) ListLogicalNodes(ctx context.Context, instanceID string) ([]Node, error) {
	if err := ValidateID("instance_id", instanceID); err != nil {
		return nil, fmt.Errorf("dcs %s: %w", OpListLogicalNodes, err)
	}
	var out struct {
		InstanceID FlexString `json:"instance_id"`
		Total      FlexInt    `json:"total"`
		Nodes      []Node     `json:"nodes"`
	}
	if err := c.do(ctx, OpListLogicalNodes, http.MethodGet, c.path("instances", instanceID, "logical-nodes"), nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Nodes, nil
}

// ScanTargets returns the nodes whose sessions an audit of the whole instance
// reads: the proxies when the instance has any (Proxy Cluster and read/write
// splitting instances, whose clients connect to proxies), otherwise every
// Redis server node, masters and replicas. Only Active nodes are returned.
// The proxy-or-data rule follows the ListClients documentation.
func (c *Client) ScanTargets(ctx context.Context, instanceID string) ([]Node, error) {
	nodes, err := c.ListLogicalNodes(ctx, instanceID)
	if err != nil {
		return nil, err
	}
	return SelectScanTargets(nodes), nil
}

// SelectScanTargets applies ScanTargets' rule to a node list.
func SelectScanTargets(nodes []Node) []Node {
	var proxies, servers []Node
	for _, n := range nodes {
		if n.NodeID == "" || (n.Status != "" && !strings.EqualFold(n.Status, "Active")) {
			continue
		}
		if n.IsProxy() {
			proxies = append(proxies, n)
		} else {
			servers = append(servers, n)
		}
	}
	if len(proxies) > 0 {
		return proxies
	}
	return servers
}
