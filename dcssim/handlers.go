package dcssim

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// JobTypeScanClients is the job_type of scan jobs (the real value is
// undocumented).
const JobTypeScanClients = "scanClients"

// Job states.
const (
	JobInit    = "INIT"
	JobRunning = "RUNNING"
	JobSuccess = "SUCCESS"
	JobFail    = "FAIL"
)

type job struct {
	id         string
	instanceID string
	nodeID     string
	begin      time.Time
	dur        time.Duration
	fail       bool
	failReason string
	live       []Client // live mode: the CLIENT LIST taken at submission
}

func (j *job) end() time.Time { return j.begin.Add(j.dur) }

// status at now: the first quarter INIT, then RUNNING, then SUCCESS/FAIL.
func (j *job) status(now time.Time) string {
	switch {
	case now.Before(j.begin.Add(j.dur / 4)):
		return JobInit
	case now.Before(j.end()):
		return JobRunning
	case j.fail:
		return JobFail
	default:
		return JobSuccess
	}
}

// nodeState is the session state of one node.
type nodeState struct {
	active   *job
	snapshot []Client // taken when the last successful scan finished
	snapTime time.Time
	scans    int // successful scans
	view     struct {
		key     string
		clients []Client
	}
}

func (s *Server) node(id string) *nodeState {
	n := s.nodes[id]
	if n == nil {
		n = &nodeState{}
		s.nodes[id] = n
	}
	return n
}

// advanceLocked finishes the jobs whose end has passed: a successful one
// replaces the node's snapshot, stamped with the job's end time.
func (s *Server) advanceLocked(now time.Time) {
	for nodeID, n := range s.nodes {
		j := n.active
		if j == nil || now.Before(j.end()) {
			continue
		}
		n.active = nil
		if j.fail {
			continue
		}
		inst, _ := s.inv.Instance(j.instanceID)
		nd, _ := inst.Node(nodeID)
		peer := nd.IP + ":" + strconv.Itoa(nd.Port)
		switch {
		case nd.RedisAddr != "":
			n.snapshot = j.live
		case n.scans == 0:
			n.snapshot = generateSessions(s.cfg.Seed, nodeID, peer, nd.SessionCount())
		default:
			n.snapshot = evolveSessions(s.cfg.Seed, nodeID, peer, n.scans, n.snapshot, j.end().Sub(n.snapTime))
		}
		n.snapTime = j.end()
		n.scans++
		n.view.key, n.view.clients = "", nil
	}
}

func (s *Server) lookupInstance(id string) (*Instance, *resp) {
	if !isUUID(id) {
		rs := errBadInstanceID()
		return nil, &rs
	}
	in, ok := s.inv.Instance(strings.ToLower(id))
	if !ok {
		rs := errNoInstance()
		return nil, &rs
	}
	return in, nil
}

func clientMgtSupported(in *Instance) bool {
	v, err := strconv.ParseFloat(in.EngineVersion, 64)
	return err == nil && v >= 4
}

// scanClients answers POST /v2/{project_id}/instances/{instance_id}/clients.
func (s *Server) scanClients(ctx context.Context, instanceID string, body []byte, now time.Time) resp {
	in, bad := s.lookupInstance(instanceID)
	if bad != nil {
		return *bad
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return errEmptyBody()
	}
	var req struct {
		NodeID     *string `json:"node_id"`
		CleanCache *bool   `json:"clean_cache"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return errBadParam(te.Field)
		}
		return errNotJSON()
	}
	if req.NodeID == nil || *req.NodeID == "" {
		return errBadParam("node_id")
	}
	if !clientMgtSupported(in) {
		return errNoClientMgt()
	}
	if in.Status != "RUNNING" {
		return errNotRunning()
	}
	nd, ok := in.Node(strings.ToLower(*req.NodeID))
	if !ok {
		return errBadNode()
	}
	if !nd.Scannable(in.CacheMode) {
		return errWrongNode()
	}

	busy := func() bool {
		s.advanceLocked(now)
		return s.node(nd.ID).active != nil
	}
	s.mu.Lock()
	isBusy := busy()
	s.mu.Unlock()
	if isBusy {
		return errJobBusy()
	}
	var live []Client
	var liveErr error
	if nd.RedisAddr != "" {
		live, liveErr = s.fetchLive(ctx, nd)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if busy() {
		return errJobBusy()
	}
	f := s.faults
	dur := s.cfg.JobDuration
	if nd.JobDuration > 0 {
		dur = time.Duration(nd.JobDuration)
	}
	if f.JobDuration > 0 {
		dur = time.Duration(f.JobDuration)
	}
	j := &job{
		id:         fmt.Sprintf("%016x%016x", s.rng.Uint64(), s.rng.Uint64()),
		instanceID: in.ID, nodeID: nd.ID, begin: now, dur: dur, live: live,
	}
	if f.FailShare > 0 && s.rng.Float64() < f.FailShare {
		j.fail, j.failReason = true, f.FailReason
		if j.failReason == "" {
			j.failReason = DefaultFailReason
		}
	}
	if liveErr != nil {
		j.fail, j.failReason = true, "Failed to query the session list of the node: "+liveErr.Error()
	}
	s.jobs[j.id] = j
	s.node(nd.ID).active = j
	s.stats.Scans[ScanKey(in.ID, nd.ID)]++
	s.stats.Jobs++
	if dur == 0 {
		s.advanceLocked(now)
	}
	return resp{status: 200, body: map[string]string{"job_id": j.id}}
}

type listClientsBody struct {
	Time    string   `json:"time"`
	Clients []Client `json:"clients"`
	Count   int      `json:"count"`
}

type quirkListBody struct {
	Time       string        `json:"time"`
	Clients    []quirkClient `json:"clients"`
	Count      int           `json:"count"`
	UpdateTime int64         `json:"update_time"`
	NodeID     string        `json:"node_id"`
}

// listClients answers GET /v2/{project_id}/instances/{instance_id}/clients.
func (s *Server) listClients(instanceID string, q url.Values, now time.Time) resp {
	in, bad := s.lookupInstance(instanceID)
	if bad != nil {
		return *bad
	}
	nodeID := q.Get("node_id")
	if nodeID == "" {
		return errBadParam("node_id")
	}
	if !clientMgtSupported(in) {
		return errNoClientMgt()
	}
	nd, ok := in.Node(strings.ToLower(nodeID))
	if !ok {
		return errBadNode()
	}
	if !nd.Scannable(in.CacheMode) {
		return errWrongNode()
	}
	offset, limit, badParam := pageParams(q)
	if badParam != "" {
		return errBadParam(badParam)
	}
	// Empty values mean "not given" (TF's data source sends sort= and order=
	// even when unset).
	sortBy := q.Get("sort")
	if sortBy != "" && sortFields[sortBy] == nil {
		return errBadParam("sort")
	}
	order := q.Get("order")
	if order != "" && order != "asc" && order != "desc" {
		return errBadParam("order")
	}
	addr := q.Get("addr")

	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked(now)
	n := s.node(nd.ID)
	if n.scans == 0 {
		return errInternal()
	}
	key := sortBy + "\x00" + order + "\x00" + addr
	if n.view.clients == nil || n.view.key != key {
		cs := filterAddr(n.snapshot, addr)
		if sortBy != "" || order == "desc" {
			cs = sortClients(cs, sortBy, order == "desc")
		}
		if cs == nil {
			cs = []Client{}
		}
		n.view.key, n.view.clients = key, cs
	}
	all := n.view.clients
	page := all[min(offset, len(all)):min(offset+limit, len(all))]
	tm := formatListTime(s.cfg.TimeFormat, n.snapTime)
	if s.cfg.Quirks {
		return resp{status: 200, body: quirkListBody{Time: tm, Clients: quirky(page), Count: len(all),
			UpdateTime: n.snapTime.UnixMilli(), NodeID: nd.ID}}
	}
	return resp{status: 200, body: listClientsBody{Time: tm, Clients: page, Count: len(all)}}
}

// pageParams reads offset (≥0, default 0) and limit (1..1000, default 10);
// bad names the first invalid one. Empty values take the default.
func pageParams(q url.Values) (offset, limit int, bad string) {
	offset, limit = 0, 10
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, 0, "offset"
		}
		offset = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return 0, 0, "limit"
		}
		limit = n
	}
	return offset, limit, ""
}

var jobIDRE = regexp.MustCompile(`^[0-9a-fA-F]{32}$`)

type jobBody struct {
	JobID      string  `json:"job_id"`
	JobType    string  `json:"job_type"`
	Status     string  `json:"status"`
	BeginTime  string  `json:"begin_time"`
	EndTime    string  `json:"end_time"`
	FailReason *string `json:"fail_reason"`
}

// showJob answers GET /v2/{project_id}/jobs/{job_id}.
func (s *Server) showJob(id string, now time.Time) resp {
	if !jobIDRE.MatchString(id) {
		return errBadJobID()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked(now)
	j, ok := s.jobs[strings.ToLower(id)]
	if !ok || s.faults.JobsUnknown {
		return errNoJob()
	}
	b := jobBody{JobID: j.id, JobType: JobTypeScanClients, Status: j.status(now),
		BeginTime: strconv.FormatInt(j.begin.UnixMilli(), 10)}
	if b.Status == JobSuccess || b.Status == JobFail {
		b.EndTime = strconv.FormatInt(j.end().UnixMilli(), 10)
	}
	if b.Status == JobFail {
		b.FailReason = &j.failReason
	}
	return resp{status: 200, body: b}
}

// instanceBody follows GoSDK InstanceListInfo; cache_mode and max_clients
// are only in ShowInstance.
type instanceBody struct {
	InstanceID          string   `json:"instance_id"`
	Name                string   `json:"name"`
	Engine              string   `json:"engine"`
	EngineVersion       string   `json:"engine_version"`
	Status              string   `json:"status"`
	Capacity            int      `json:"capacity"`
	CapacityMinor       string   `json:"capacity_minor"`
	MaxMemory           int      `json:"max_memory"`
	UsedMemory          int      `json:"used_memory"`
	IP                  string   `json:"ip"`
	Port                int      `json:"port"`
	DomainName          string   `json:"domain_name"`
	ReadonlyDomainName  string   `json:"readonly_domain_name"`
	SpecCode            string   `json:"spec_code"`
	CreatedAt           string   `json:"created_at"`
	AZCodes             []string `json:"az_codes"`
	ChargingMode        int      `json:"charging_mode"`
	VpcID               string   `json:"vpc_id"`
	VpcName             string   `json:"vpc_name"`
	SubnetID            string   `json:"subnet_id"`
	SecurityGroupID     string   `json:"security_group_id"`
	EnterpriseProjectID string   `json:"enterprise_project_id"`
	Description         string   `json:"description"`
	ProductType         string   `json:"product_type"`
	CPUType             string   `json:"cpu_type"`
	NoPasswordAccess    string   `json:"no_password_access"`
	EnablePublicIP      bool     `json:"enable_publicip"`
	MaintainBegin       string   `json:"maintain_begin"`
	MaintainEnd         string   `json:"maintain_end"`
	Tags                []any    `json:"tags"`
	TaskStatus          string   `json:"task_status"`
}

type showInstanceBody struct {
	instanceBody
	CacheMode                 string  `json:"cache_mode"`
	MaxClients                int     `json:"max_clients"`
	TransparentClientIPEnable bool    `json:"transparent_client_ip_enable"`
	SubStatus                 string  `json:"sub_status"`
	Task                      *string `json:"task"`
	ShardingCount             int     `json:"sharding_count"`
	ReplicaCount              int     `json:"replica_count"`
}

func instanceJSON(in *Instance) instanceBody {
	b := instanceBody{InstanceID: in.ID, Name: in.Name, Engine: "Redis", EngineVersion: in.EngineVersion,
		Status: in.Status, Capacity: in.Capacity, MaxMemory: in.Capacity * 1024 * 4 / 5,
		UsedMemory: in.Capacity * 1024 / 7, IP: in.IP, Port: in.Port, DomainName: in.DomainName,
		SpecCode: in.SpecCode, CreatedAt: in.CreatedAt, AZCodes: in.AZCodes,
		VpcID: "7d9f4a30-2f7c-4c8a-9d5e-5a1f0c1e2b3a", VpcName: "vpc-dcssim",
		SubnetID: "0b3c2e44-6f1a-4b9e-8c7d-2e5f6a7b8c9d", SecurityGroupID: "5c6d7e8f-9a0b-4c1d-8e2f-3a4b5c6d7e8f",
		EnterpriseProjectID: "0", ProductType: "generic", CPUType: "x86_64", NoPasswordAccess: "false",
		MaintainBegin: "18:00:00", MaintainEnd: "19:00:00", Tags: []any{}}
	if in.CacheMode == "ha_rw_split" {
		b.ReadonlyDomainName = "readonly-" + in.DomainName
	}
	return b
}

// listInstances answers GET /v2/{project_id}/instances.
func (s *Server) listInstances(q url.Values) resp {
	offset, limit, bad := pageParams(q)
	if bad != "" {
		return errBadParam(bad)
	}
	id, name, status := strings.ToLower(q.Get("instance_id")), q.Get("name"), q.Get("status")
	matched := []instanceBody{}
	for i := range s.inv.Instances {
		in := &s.inv.Instances[i]
		if (id != "" && in.ID != id) || (name != "" && !strings.Contains(in.Name, name)) ||
			(status != "" && in.Status != status) {
			continue
		}
		matched = append(matched, instanceJSON(in))
	}
	page := matched[min(offset, len(matched)):min(offset+limit, len(matched))]
	return resp{status: 200, body: struct {
		InstanceNum int            `json:"instance_num"`
		Instances   []instanceBody `json:"instances"`
	}{len(matched), page}}
}

// showInstance answers GET /v2/{project_id}/instances/{instance_id}.
func (s *Server) showInstance(instanceID string) resp {
	in, bad := s.lookupInstance(instanceID)
	if bad != nil {
		return *bad
	}
	b := showInstanceBody{instanceBody: instanceJSON(in), CacheMode: in.CacheMode, MaxClients: in.MaxClients,
		SubStatus: "normal"}
	groups := map[string]bool{}
	for _, n := range in.Nodes {
		if n.Type != "proxy" {
			groups[n.GroupID] = true
		}
	}
	b.ShardingCount = len(groups)
	if b.ShardingCount > 0 {
		data := 0
		for _, n := range in.Nodes {
			if n.Type != "proxy" {
				data++
			}
		}
		b.ReplicaCount = data / b.ShardingCount
	}
	return resp{status: 200, body: b}
}

type dimension struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type logicalNode struct {
	LogicalNodeID  string      `json:"logical_node_id"`
	Name           string      `json:"name"`
	Status         string      `json:"status"`
	AZCode         string      `json:"az_code"`
	NodeRole       string      `json:"node_role"`
	NodeType       string      `json:"node_type"`
	NodeIP         string      `json:"node_ip"`
	NodePort       string      `json:"node_port"`
	NodeID         string      `json:"node_id"`
	PriorityWeight int         `json:"priority_weight"`
	IsAccess       bool        `json:"is_access"`
	GroupID        string      `json:"group_id"`
	GroupName      string      `json:"group_name"`
	IsRemoveIP     bool        `json:"is_remove_ip"`
	ReplicationID  string      `json:"replication_id"`
	Dimensions     []dimension `json:"dimensions"`
}

func hash32(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// logicalNodes answers GET /v2/{project_id}/instances/{instance_id}/logical-nodes.
func (s *Server) logicalNodes(instanceID string) resp {
	in, bad := s.lookupInstance(instanceID)
	if bad != nil {
		return *bad
	}
	nodes := make([]logicalNode, 0, len(in.Nodes))
	for _, n := range in.Nodes {
		ln := logicalNode{LogicalNodeID: hash32("logical/" + n.ID), Name: n.Name, Status: "Active", AZCode: n.AZCode,
			NodeRole: n.Role(), NodeType: n.Type, NodeIP: n.IP, NodePort: strconv.Itoa(n.Port), NodeID: n.ID,
			PriorityWeight: 100, IsAccess: n.Type != "slave" || in.CacheMode == "ha_rw_split",
			GroupID: n.GroupID, GroupName: n.GroupName,
			Dimensions: []dimension{{Name: "dcs_instance_id", Value: in.ID}}}
		if n.Type == "proxy" {
			ln.Dimensions = append(ln.Dimensions, dimension{Name: "dcs_cluster_proxy_node", Value: n.ID})
		} else {
			ln.ReplicationID = hash32("replication/" + n.ID)
			ln.Dimensions = append(ln.Dimensions, dimension{Name: "dcs_cluster_redis_node", Value: n.ID})
		}
		nodes = append(nodes, ln)
	}
	return resp{status: 200, body: struct {
		InstanceID string        `json:"instance_id"`
		Total      int           `json:"total"`
		Nodes      []logicalNode `json:"nodes"`
	}{in.ID, len(nodes), nodes}}
}
