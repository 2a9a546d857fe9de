package dcssim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Inventory is the set of DCS instances the simulator serves.
type Inventory struct {
	Instances []Instance `json:"instances" yaml:"instances"`
}

// Instance is one DCS instance. Empty fields get defaults (see normalize).
type Instance struct {
	// ID is the instance UUID (required).
	ID   string `json:"id" yaml:"id"`
	Name string `json:"name" yaml:"name"`
	// EngineVersion such as "3.0", "4.0", "5.0", "6.0". Default "5.0".
	// Below 4.0, session management answers DCS.4848.
	EngineVersion string `json:"engine_version" yaml:"engine_version"`
	// Status such as RUNNING (default), RESTARTING, ERROR. Anything but
	// RUNNING makes ScanClients answer DCS.4049.
	Status string `json:"status" yaml:"status"`
	// CacheMode is single, ha, ha_rw_split, proxy or cluster (required).
	CacheMode string `json:"cache_mode" yaml:"cache_mode"`
	// Capacity in GB. Default 1.
	Capacity   int    `json:"capacity" yaml:"capacity"`
	IP         string `json:"ip" yaml:"ip"`
	Port       int    `json:"port" yaml:"port"` // default 6379
	DomainName string `json:"domain_name" yaml:"domain_name"`
	SpecCode   string `json:"spec_code" yaml:"spec_code"`
	// MaxClients is maxclients per node. Default 10000.
	MaxClients int      `json:"max_clients" yaml:"max_clients"`
	AZCodes    []string `json:"az_codes" yaml:"az_codes"` // default [ap-southeast-1a]
	CreatedAt  string   `json:"created_at" yaml:"created_at"`
	Nodes      []Node   `json:"nodes" yaml:"nodes"`
}

// Node is one logical node (Redis server or proxy) of an instance.
type Node struct {
	// ID is the node_id UUID passed to ScanClients/ListClients (required).
	ID   string `json:"id" yaml:"id"`
	Name string `json:"name" yaml:"name"`
	// Type is master, slave or proxy (required).
	Type      string `json:"type" yaml:"type"`
	IP        string `json:"ip" yaml:"ip"`
	Port      int    `json:"port" yaml:"port"` // default 6379
	AZCode    string `json:"az_code" yaml:"az_code"`
	GroupID   string `json:"group_id" yaml:"group_id"`
	GroupName string `json:"group_name" yaml:"group_name"`
	// Sessions is the number of synthetic sessions. nil → 300; 0 is allowed.
	Sessions *int `json:"sessions,omitempty" yaml:"sessions"`
	// RedisAddr ("host:port"), if set, puts the node in live mode: scans
	// return that server's real CLIENT LIST.
	RedisAddr     string `json:"redis_addr,omitempty" yaml:"redis_addr"`
	RedisPassword string `json:"redis_password,omitempty" yaml:"redis_password"`
	// JobDuration, if > 0, is this node's scan duration.
	JobDuration Duration `json:"job_duration,omitempty" yaml:"job_duration"`
}

// DefaultSessions is a node's session count when Node.Sessions is nil.
const DefaultSessions = 300

// SessionCount is the configured number of synthetic sessions.
func (n Node) SessionCount() int {
	if n.Sessions == nil {
		return DefaultSessions
	}
	return *n.Sessions
}

// Role is the node_role the API reports: redis-proxy or redis-server.
func (n Node) Role() string {
	if n.Type == "proxy" {
		return "redis-proxy"
	}
	return "redis-server"
}

// Scannable reports whether sessions of this node can be listed on an
// instance of the given cache mode: proxies on proxy and ha_rw_split
// instances, data nodes elsewhere.
func (n Node) Scannable(cacheMode string) bool {
	if cacheMode == "proxy" || cacheMode == "ha_rw_split" {
		return n.Type == "proxy"
	}
	return n.Type != "proxy"
}

// Node returns the node with the given ID.
func (in *Instance) Node(id string) (*Node, bool) {
	for i := range in.Nodes {
		if in.Nodes[i].ID == id {
			return &in.Nodes[i], true
		}
	}
	return nil, false
}

// Instance returns the instance with the given ID.
func (inv *Inventory) Instance(id string) (*Instance, bool) {
	for i := range inv.Instances {
		if inv.Instances[i].ID == id {
			return &inv.Instances[i], true
		}
	}
	return nil, false
}

func (inv *Inventory) clone() *Inventory {
	out := &Inventory{Instances: make([]Instance, len(inv.Instances))}
	for i, in := range inv.Instances {
		in.AZCodes = slices.Clone(in.AZCodes)
		in.Nodes = slices.Clone(in.Nodes)
		for j := range in.Nodes {
			if s := in.Nodes[j].Sessions; s != nil {
				v := *s
				in.Nodes[j].Sessions = &v
			}
		}
		out.Instances[i] = in
	}
	return out
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func isUUID(s string) bool { return uuidRE.MatchString(s) }

// MaxSessionsPerNode bounds Node.Sessions.
const MaxSessionsPerNode = 1_000_000

// normalize validates the inventory and fills defaults. Errors name the
// field path and the bad value.
func (inv *Inventory) normalize() error {
	if len(inv.Instances) == 0 {
		return errors.New("instances: at least one instance is required")
	}
	seenInst := map[string]bool{}
	seenNode := map[string]string{}
	for i := range inv.Instances {
		in := &inv.Instances[i]
		p := fmt.Sprintf("instances[%d]", i)
		if !isUUID(in.ID) {
			return fmt.Errorf("%s.id %q is not a UUID", p, in.ID)
		}
		in.ID = strings.ToLower(in.ID)
		if seenInst[in.ID] {
			return fmt.Errorf("%s.id %q is a duplicate", p, in.ID)
		}
		seenInst[in.ID] = true
		switch in.CacheMode {
		case "single", "ha", "ha_rw_split", "proxy", "cluster":
		default:
			return fmt.Errorf("%s.cache_mode %q is not one of single, ha, ha_rw_split, proxy, cluster", p, in.CacheMode)
		}
		if in.Name == "" {
			in.Name = "dcs-" + in.ID[:8]
		}
		if in.EngineVersion == "" {
			in.EngineVersion = "5.0"
		}
		if _, err := strconv.ParseFloat(in.EngineVersion, 64); err != nil {
			return fmt.Errorf("%s.engine_version %q is not a version number like 5.0", p, in.EngineVersion)
		}
		if in.Status == "" {
			in.Status = "RUNNING"
		}
		if in.Capacity == 0 {
			in.Capacity = 1
		}
		if in.Capacity < 0 {
			return fmt.Errorf("%s.capacity %d is negative", p, in.Capacity)
		}
		if in.Port == 0 {
			in.Port = 6379
		}
		if in.IP == "" {
			in.IP = fmt.Sprintf("192.168.%d.10", i%250)
		}
		if in.DomainName == "" {
			in.DomainName = "redis-" + in.ID + ".dcs.huaweicloud.com"
		}
		if in.SpecCode == "" {
			in.SpecCode = "redis.simulated." + in.CacheMode
		}
		if in.MaxClients == 0 {
			in.MaxClients = 10000
		}
		if len(in.AZCodes) == 0 {
			in.AZCodes = []string{"ap-southeast-1a"}
		}
		if in.CreatedAt == "" {
			in.CreatedAt = "2025-06-01T08:00:00.000Z"
		}
		for j := range in.Nodes {
			n := &in.Nodes[j]
			np := fmt.Sprintf("%s.nodes[%d]", p, j)
			if !isUUID(n.ID) {
				return fmt.Errorf("%s.id %q is not a UUID", np, n.ID)
			}
			n.ID = strings.ToLower(n.ID)
			if other, dup := seenNode[n.ID]; dup {
				return fmt.Errorf("%s.id %q is a duplicate (also in instance %s)", np, n.ID, other)
			}
			seenNode[n.ID] = in.ID
			switch n.Type {
			case "master", "slave", "proxy":
			default:
				return fmt.Errorf("%s.type %q is not one of master, slave, proxy", np, n.Type)
			}
			if n.Sessions != nil && (*n.Sessions < 0 || *n.Sessions > MaxSessionsPerNode) {
				return fmt.Errorf("%s.sessions %d is outside 0..%d", np, *n.Sessions, MaxSessionsPerNode)
			}
			if n.JobDuration < 0 {
				return fmt.Errorf("%s.job_duration %v is negative", np, n.JobDuration)
			}
			if n.Name == "" {
				n.Name = fmt.Sprintf("%s-%s-%d", in.Name, n.Type, j+1)
			}
			if n.IP == "" {
				n.IP = fmt.Sprintf("192.168.%d.%d", i%250, 20+j%200)
			}
			if n.Port == 0 {
				n.Port = 6379
			}
			if n.AZCode == "" {
				n.AZCode = in.AZCodes[j%len(in.AZCodes)]
			}
			if n.GroupID == "" {
				n.GroupID = in.ID
				if n.Type == "proxy" {
					n.GroupID = "proxy-" + in.ID[:8]
				}
			}
			if n.GroupName == "" {
				n.GroupName = "group-0"
				if n.Type == "proxy" {
					n.GroupName = "proxy"
				}
			}
		}
	}
	return nil
}

// LoadInventory reads an inventory file: JSON when the name ends in .json,
// YAML otherwise. Decoding is strict: an unknown key is an error that names
// the key (and, for YAML, the line).
func LoadInventory(path string) (*Inventory, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("dcssim: inventory: %w", err)
	}
	inv, err := ParseInventory(b, strings.EqualFold(filepath.Ext(path), ".json"))
	if err != nil {
		return nil, fmt.Errorf("dcssim: inventory %s: %w", path, err)
	}
	return inv, nil
}

// ParseInventory decodes and validates an inventory document (JSON if isJSON,
// else YAML), strictly.
func ParseInventory(b []byte, isJSON bool) (*Inventory, error) {
	var inv Inventory
	if isJSON {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&inv); err != nil {
			return nil, err
		}
		if dec.More() {
			return nil, errors.New("trailing data after the JSON document")
		}
	} else {
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&inv); err != nil {
			if errors.Is(err, io.EOF) {
				return nil, errors.New("empty document")
			}
			return nil, err
		}
	}
	if err := inv.normalize(); err != nil {
		return nil, err
	}
	return &inv, nil
}

// IDs of DefaultInventory. Instance k has ID kkkkkkkk-kkkk-4kkk-8kkk-kkkkkkkkkkkk
// and its n-th node kkkkkkkk-0000-4000-8000-00000000000n.
const (
	SingleInstanceID = "11111111-1111-4111-8111-111111111111" // single, Redis 5.0
	SingleNodeID     = "11111111-0000-4000-8000-000000000001" // master, 250 sessions

	HAInstanceID   = "22222222-2222-4222-8222-222222222222" // ha (master/standby), Redis 6.0
	HAMasterNodeID = "22222222-0000-4000-8000-000000000001" // master, 12,000 sessions
	HASlaveNodeID  = "22222222-0000-4000-8000-000000000002" // slave, 40 sessions

	ClusterInstanceID = "33333333-3333-4333-8333-333333333333" // cluster, Redis 6.0, 3 shards
	ClusterNode1ID    = "33333333-0000-4000-8000-000000000001" // shard 1 master
	ClusterNode2ID    = "33333333-0000-4000-8000-000000000002" // shard 1 replica
	ClusterNode3ID    = "33333333-0000-4000-8000-000000000003" // shard 2 master
	ClusterNode4ID    = "33333333-0000-4000-8000-000000000004" // shard 2 replica
	ClusterNode5ID    = "33333333-0000-4000-8000-000000000005" // shard 3 master
	ClusterNode6ID    = "33333333-0000-4000-8000-000000000006" // shard 3 replica

	ProxyInstanceID   = "44444444-4444-4444-8444-444444444444" // proxy cluster, Redis 5.0
	ProxyNode1ID      = "44444444-0000-4000-8000-000000000001" // proxy
	ProxyNode2ID      = "44444444-0000-4000-8000-000000000002" // proxy
	ProxyDataNode1ID  = "44444444-0000-4000-8000-000000000003" // shard 1 master (not scannable: 4027)
	ProxyDataNode1RID = "44444444-0000-4000-8000-000000000004" // shard 1 replica
	ProxyDataNode2ID  = "44444444-0000-4000-8000-000000000005" // shard 2 master
	ProxyDataNode2RID = "44444444-0000-4000-8000-000000000006" // shard 2 replica
	ProxyDataNode3ID  = "44444444-0000-4000-8000-000000000007" // shard 3 master
	ProxyDataNode3RID = "44444444-0000-4000-8000-000000000008" // shard 3 replica

	RWSplitInstanceID   = "55555555-5555-4555-8555-555555555555" // ha_rw_split, Redis 6.0
	RWSplitProxy1ID     = "55555555-0000-4000-8000-000000000001" // proxy
	RWSplitProxy2ID     = "55555555-0000-4000-8000-000000000002" // proxy
	RWSplitMasterNodeID = "55555555-0000-4000-8000-000000000003" // master (not scannable: 4027)
	RWSplitSlaveNodeID  = "55555555-0000-4000-8000-000000000004" // slave

	Redis3InstanceID = "66666666-6666-4666-8666-666666666666" // ha, Redis 3.0 → DCS.4848
	Redis3NodeID     = "66666666-0000-4000-8000-000000000001" // master

	StoppedInstanceID = "77777777-7777-4777-8777-777777777777" // single, status RESTARTING → DCS.4049
	StoppedNodeID     = "77777777-0000-4000-8000-000000000001" // master
)

// BigNodeSessions is the session count of HAMasterNodeID, for paging tests.
const BigNodeSessions = 12_000

func intp(v int) *int { return &v }

// DefaultInventory returns the built-in inventory: one instance of each kind
// the worker must handle (see the *InstanceID constants).
func DefaultInventory() *Inventory {
	inv := &Inventory{Instances: []Instance{
		{ID: SingleInstanceID, Name: "dcs-single", EngineVersion: "5.0", CacheMode: "single", Capacity: 1,
			IP: "192.168.1.10", SpecCode: "redis.single.xu1.large.1",
			Nodes: []Node{{ID: SingleNodeID, Type: "master", IP: "192.168.1.11", Sessions: intp(250)}}},
		{ID: HAInstanceID, Name: "dcs-ha", EngineVersion: "6.0", CacheMode: "ha", Capacity: 8,
			IP: "192.168.2.10", SpecCode: "redis.ha.xu1.large.r2.8", AZCodes: []string{"ap-southeast-1a", "ap-southeast-1b"},
			Nodes: []Node{
				{ID: HAMasterNodeID, Type: "master", IP: "192.168.2.11", Sessions: intp(BigNodeSessions)},
				{ID: HASlaveNodeID, Type: "slave", IP: "192.168.2.12", Sessions: intp(40)},
			}},
		{ID: ClusterInstanceID, Name: "dcs-cluster", EngineVersion: "6.0", CacheMode: "cluster", Capacity: 24,
			IP: "192.168.3.10", SpecCode: "redis.cluster.xu1.large.r2.24", AZCodes: []string{"ap-southeast-1a", "ap-southeast-1b"}},
		{ID: ProxyInstanceID, Name: "dcs-proxy", EngineVersion: "5.0", CacheMode: "proxy", Capacity: 24,
			IP: "192.168.4.10", SpecCode: "redis.proxy.xu1.large.24",
			Nodes: []Node{
				{ID: ProxyNode1ID, Type: "proxy", IP: "192.168.4.11", Sessions: intp(400)},
				{ID: ProxyNode2ID, Type: "proxy", IP: "192.168.4.12", Sessions: intp(380)},
			}},
		{ID: RWSplitInstanceID, Name: "dcs-rwsplit", EngineVersion: "6.0", CacheMode: "ha_rw_split", Capacity: 4,
			IP: "192.168.5.10", SpecCode: "redis.ha.xu1.large.p2.4",
			Nodes: []Node{
				{ID: RWSplitProxy1ID, Type: "proxy", IP: "192.168.5.11", Sessions: intp(200)},
				{ID: RWSplitProxy2ID, Type: "proxy", IP: "192.168.5.12", Sessions: intp(180)},
				{ID: RWSplitMasterNodeID, Type: "master", IP: "192.168.5.13", Sessions: intp(8)},
				{ID: RWSplitSlaveNodeID, Type: "slave", IP: "192.168.5.14", Sessions: intp(6)},
			}},
		{ID: Redis3InstanceID, Name: "dcs-redis3", EngineVersion: "3.0", CacheMode: "ha", Capacity: 2,
			IP: "192.168.6.10", SpecCode: "dcs.master_standby",
			Nodes: []Node{{ID: Redis3NodeID, Type: "master", IP: "192.168.6.11"}}},
		{ID: StoppedInstanceID, Name: "dcs-restarting", EngineVersion: "5.0", Status: "RESTARTING", CacheMode: "single",
			IP: "192.168.7.10", SpecCode: "redis.single.xu1.large.1",
			Nodes: []Node{{ID: StoppedNodeID, Type: "master", IP: "192.168.7.11", Sessions: intp(120)}}},
	}}
	cl := &inv.Instances[2]
	ids := []string{ClusterNode1ID, ClusterNode2ID, ClusterNode3ID, ClusterNode4ID, ClusterNode5ID, ClusterNode6ID}
	for i, id := range ids {
		typ, sessions := "master", 320-i*10
		if i%2 == 1 {
			typ, sessions = "slave", 60
		}
		shard := i / 2
		cl.Nodes = append(cl.Nodes, Node{ID: id, Type: typ, IP: fmt.Sprintf("192.168.3.%d", 11+i),
			GroupID: fmt.Sprintf("33333333-%04d-4000-8000-333333333333", shard+1), GroupName: fmt.Sprintf("group-%d", shard),
			Sessions: intp(sessions)})
	}
	px := &inv.Instances[3]
	data := []string{ProxyDataNode1ID, ProxyDataNode1RID, ProxyDataNode2ID, ProxyDataNode2RID, ProxyDataNode3ID, ProxyDataNode3RID}
	for i, id := range data {
		typ := "master"
		if i%2 == 1 {
			typ = "slave"
		}
		shard := i / 2
		px.Nodes = append(px.Nodes, Node{ID: id, Type: typ, IP: fmt.Sprintf("192.168.4.%d", 21+i),
			GroupID: fmt.Sprintf("44444444-%04d-4000-8000-444444444444", shard+1), GroupName: fmt.Sprintf("group-%d", shard),
			Sessions: intp(4)})
	}
	if err := inv.normalize(); err != nil {
		panic("dcssim: default inventory: " + err.Error())
	}
	return inv
}
