package dcssim

import (
	"encoding/json"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	hex32RE = regexp.MustCompile(`^[0-9a-f]{32}$`)
	ctRE    = "application/json;charset=UTF-8"
)

func TestHappyPaths(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{Seed: 1})
	jobID := e.scanDone(SingleInstanceID, SingleNodeID)
	tests := []struct {
		name  string
		path  string
		check func(t *testing.T, r reply)
	}{
		{"ListInstances", p("/instances"), func(t *testing.T, r reply) {
			if r.str("instance_num") != "" || r.body["instance_num"].(json.Number).String() != "7" {
				t.Fatalf("instance_num: %s", r.raw)
			}
			if n := len(r.body["instances"].([]any)); n != 7 {
				t.Fatalf("got %d instances on the default page of 10", n)
			}
			first := r.body["instances"].([]any)[0].(map[string]any)
			for _, k := range []string{"instance_id", "name", "engine", "engine_version", "status", "capacity",
				"max_memory", "used_memory", "ip", "port", "domain_name", "spec_code", "created_at", "az_codes"} {
				if _, ok := first[k]; !ok {
					t.Errorf("instance lacks %q", k)
				}
			}
			if first["engine"] != "Redis" {
				t.Errorf("engine %v", first["engine"])
			}
		}},
		{"ListInstances paging", p("/instances?offset=2&limit=2"), func(t *testing.T, r reply) {
			is := r.body["instances"].([]any)
			if len(is) != 2 || is[0].(map[string]any)["instance_id"] != ClusterInstanceID ||
				r.body["instance_num"].(json.Number).String() != "7" {
				t.Fatalf("page: %s", r.raw)
			}
		}},
		{"ListInstances filters", p("/instances?name=proxy&status=RUNNING"), func(t *testing.T, r reply) {
			is := r.body["instances"].([]any)
			if len(is) != 1 || is[0].(map[string]any)["instance_id"] != ProxyInstanceID {
				t.Fatalf("filter: %s", r.raw)
			}
		}},
		{"ListInstances by id", p("/instances?instance_id=" + StoppedInstanceID), func(t *testing.T, r reply) {
			is := r.body["instances"].([]any)
			if len(is) != 1 || is[0].(map[string]any)["status"] != "RESTARTING" {
				t.Fatalf("filter: %s", r.raw)
			}
		}},
		{"ShowInstance", p("/instances/" + ClusterInstanceID), func(t *testing.T, r reply) {
			if r.str("cache_mode") != "cluster" || r.body["max_clients"].(json.Number).String() != "10000" ||
				r.str("instance_id") != ClusterInstanceID || r.str("engine_version") != "6.0" {
				t.Fatalf("show: %s", r.raw)
			}
		}},
		{"ListLogicalNodes", p("/instances/" + ProxyInstanceID + "/logical-nodes"), func(t *testing.T, r reply) {
			nodes := r.body["nodes"].([]any)
			if r.body["total"].(json.Number).String() != "8" || len(nodes) != 8 || r.str("instance_id") != ProxyInstanceID {
				t.Fatalf("nodes: %s", r.raw)
			}
			n0 := nodes[0].(map[string]any)
			if n0["node_role"] != "redis-proxy" || n0["node_type"] != "proxy" || n0["node_id"] != ProxyNode1ID ||
				n0["node_port"] != "6379" || n0["status"] != "Active" {
				t.Fatalf("node 0: %v", n0)
			}
			n2 := nodes[2].(map[string]any)
			if n2["node_role"] != "redis-server" || n2["node_type"] != "master" {
				t.Fatalf("node 2: %v", n2)
			}
			for _, k := range []string{"logical_node_id", "name", "az_code", "node_ip", "priority_weight", "is_access",
				"group_id", "group_name", "is_remove_ip", "replication_id", "dimensions"} {
				if _, ok := n0[k]; !ok {
					t.Errorf("node lacks %q", k)
				}
			}
		}},
		{"ShowJobInfo", p("/jobs/" + jobID), func(t *testing.T, r reply) {
			if r.str("job_id") != jobID || r.str("status") != "SUCCESS" || r.str("job_type") != JobTypeScanClients {
				t.Fatalf("job: %s", r.raw)
			}
		}},
		{"ListClients", clientsPath(SingleInstanceID) + "?node_id=" + SingleNodeID, func(t *testing.T, r reply) {
			if r.body["count"].(json.Number).String() != "250" || len(r.body["clients"].([]any)) != 10 {
				t.Fatalf("list: %s", r.raw)
			}
			c := r.body["clients"].([]any)[0].(map[string]any)
			for _, k := range []string{"id", "addr", "fd", "name", "cmd", "age", "idle", "db", "flags", "sub", "psub",
				"multi", "qbuf", "qbuf_free", "obl", "oll", "omem", "events", "network", "peer", "user"} {
				if _, ok := c[k]; !ok {
					t.Errorf("client lacks %q", k)
				}
			}
			if _, isStr := c["db"].(string); !isStr {
				t.Errorf("db is not a string: %v", c["db"])
			}
			if c["peer"] != "192.168.1.11:6379" || c["network"] != "ipv4" {
				t.Errorf("peer/network: %v %v", c["peer"], c["network"])
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do("GET", tt.path, "")
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.raw)
			}
			if ct := r.header.Get("Content-Type"); ct != ctRE {
				t.Errorf("Content-Type %q", ct)
			}
			if id := r.header.Get("X-Request-Id"); !hex32RE.MatchString(id) {
				t.Errorf("X-Request-Id %q", id)
			}
			tt.check(t, r)
		})
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{Seed: 2})
	e.scan(HAInstanceID, HASlaveNodeID) // busy node for 4957
	scanBody := func(node string) string { return `{"node_id":"` + node + `"}` }
	lst := func(inst, q string) string { return clientsPath(inst) + "?" + q }
	tests := []struct {
		name, method, path, body string
		status                   int
		code, msg                string
	}{
		{"wrong project", "GET", "/v2/ffffffffffffffffffffffffffffffff/instances", "", 401, "DCS.1004", "Project ID does not match the token."},
		{"wrong project scan", "POST", "/v2/ffffffffffffffffffffffffffffffff/instances/" + SingleInstanceID + "/clients", scanBody(SingleNodeID), 401, "DCS.1004", ""},
		{"instance not uuid", "GET", p("/instances/not-a-uuid"), "", 400, "DCS.4061", "Invalid instance ID format."},
		{"instance not uuid scan", "POST", clientsPath("xyz"), scanBody(SingleNodeID), 400, "DCS.4061", ""},
		{"unknown instance", "GET", p("/instances/99999999-9999-4999-8999-999999999999"), "", 404, "DCS.3022", "This DCS instance does not exist."},
		{"unknown instance nodes", "GET", p("/instances/99999999-9999-4999-8999-999999999999/logical-nodes"), "", 404, "DCS.3022", ""},
		{"unknown instance list", "GET", lst("99999999-9999-4999-8999-999999999999", "node_id="+SingleNodeID), "", 404, "DCS.3022", ""},
		{"scan empty body", "POST", clientsPath(SingleInstanceID), "", 400, "DCS.4004", ""},
		{"scan not json", "POST", clientsPath(SingleInstanceID), "node_id=x", 400, "DCS.4005", ""},
		{"scan no node_id", "POST", clientsPath(SingleInstanceID), `{"clean_cache":true}`, 400, "DCS.4062", "Invalid node_id parameter in the request."},
		{"scan node_id wrong type", "POST", clientsPath(SingleInstanceID), `{"node_id":12}`, 400, "DCS.4062", "node_id"},
		{"scan unknown node", "POST", clientsPath(SingleInstanceID), scanBody(HAMasterNodeID), 400, "DCS.3053", "Incorrect node ID."},
		{"scan redis 3", "POST", clientsPath(Redis3InstanceID), scanBody(Redis3NodeID), 400, "DCS.4848", "Client Management is not supported."},
		{"scan not running", "POST", clientsPath(StoppedInstanceID), scanBody(StoppedNodeID), 400, "DCS.4049", ""},
		{"scan proxy data node", "POST", clientsPath(ProxyInstanceID), scanBody(ProxyDataNode1ID), 400, "DCS.4027", "This operation is not supported on this node."},
		{"scan rw-split master", "POST", clientsPath(RWSplitInstanceID), scanBody(RWSplitMasterNodeID), 400, "DCS.4027", ""},
		{"scan busy node", "POST", clientsPath(HAInstanceID), scanBody(HASlaveNodeID), 400, "DCS.4957", "This operation is not allowed when the task is in the current state."},
		{"list no node", "GET", clientsPath(SingleInstanceID), "", 400, "DCS.4062", "node_id"},
		{"list unknown node", "GET", lst(SingleInstanceID, "node_id="+ClusterNode1ID), "", 400, "DCS.3053", ""},
		{"list proxy data node", "GET", lst(ProxyInstanceID, "node_id="+ProxyDataNode2ID), "", 400, "DCS.4027", ""},
		{"list redis 3", "GET", lst(Redis3InstanceID, "node_id="+Redis3NodeID), "", 400, "DCS.4848", ""},
		{"list limit 0", "GET", lst(SingleInstanceID, "node_id="+SingleNodeID+"&limit=0"), "", 400, "DCS.4062", "Invalid limit parameter in the request."},
		{"list limit 1001", "GET", lst(SingleInstanceID, "node_id="+SingleNodeID+"&limit=1001"), "", 400, "DCS.4062", "limit"},
		{"list limit text", "GET", lst(SingleInstanceID, "node_id="+SingleNodeID+"&limit=ten"), "", 400, "DCS.4062", "limit"},
		{"list offset negative", "GET", lst(SingleInstanceID, "node_id="+SingleNodeID+"&offset=-1"), "", 400, "DCS.4062", "Invalid offset parameter"},
		{"list bad sort", "GET", lst(SingleInstanceID, "node_id="+SingleNodeID+"&sort=bogus"), "", 400, "DCS.4062", "Invalid sort parameter"},
		{"list bad order", "GET", lst(SingleInstanceID, "node_id="+SingleNodeID+"&order=up"), "", 400, "DCS.4062", "Invalid order parameter"},
		{"list before scan", "GET", lst(SingleInstanceID, "node_id="+SingleNodeID), "", 500, "DCS.5000", "Internal service error."},
		{"list while scanning", "GET", lst(HAInstanceID, "node_id="+HASlaveNodeID), "", 500, "DCS.5000", ""},
		{"instances bad limit", "GET", p("/instances?limit=5000"), "", 400, "DCS.4062", "limit"},
		{"instances bad offset", "GET", p("/instances?offset=x"), "", 400, "DCS.4062", "offset"},
		{"job malformed", "GET", p("/jobs/xyz"), "", 400, "DCS.4070", "Invalid task ID format."},
		{"job unknown", "GET", p("/jobs/0123456789abcdef0123456789abcdef"), "", 404, "DCS.5101", "The job does not exist."},
		{"unknown path", "GET", "/v2/" + DefaultProjectID + "/widgets", "", 404, "APIGW.0101", "The API does not exist or has not been published in the environment"},
		{"unknown root", "GET", "/", "", 404, "APIGW.0101", ""},
		{"wrong method", "DELETE", p("/instances/" + SingleInstanceID), "", 404, "APIGW.0101", ""},
		{"wrong method clients", "PUT", clientsPath(SingleInstanceID), scanBody(SingleNodeID), 404, "APIGW.0101", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(tt.method, tt.path, tt.body)
			wantError(t, r, tt.status, tt.code, tt.msg)
			if ct := r.header.Get("Content-Type"); ct != ctRE {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}

func TestJobLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{Seed: 3, JobDuration: 4 * time.Second})
	start := e.clock.Now()
	jobID := e.scan(SingleInstanceID, SingleNodeID)
	if !hex32RE.MatchString(jobID) {
		t.Fatalf("job_id %q is not 32 lower-case hex", jobID)
	}
	steps := []struct {
		at         time.Duration
		status     string
		listStatus int
	}{
		{0, "INIT", 500},
		{999 * time.Millisecond, "INIT", 500},
		{time.Second, "RUNNING", 500},
		{3999 * time.Millisecond, "RUNNING", 500},
		{4 * time.Second, "SUCCESS", 200},
		{time.Hour, "SUCCESS", 200},
	}
	for _, st := range steps {
		e.clock.Set(start.Add(st.at))
		r := e.do("GET", p("/jobs/"+jobID), "")
		if r.status != 200 || r.str("status") != st.status {
			t.Fatalf("at %v: %d %s, want %s", st.at, r.status, r.raw, st.status)
		}
		if r.str("begin_time") != strconv.FormatInt(start.UnixMilli(), 10) {
			t.Errorf("begin_time %q", r.str("begin_time"))
		}
		wantEnd := ""
		if st.status == "SUCCESS" {
			wantEnd = strconv.FormatInt(start.Add(4*time.Second).UnixMilli(), 10)
		}
		if r.str("end_time") != wantEnd {
			t.Errorf("at %v: end_time %q, want %q", st.at, r.str("end_time"), wantEnd)
		}
		if v, ok := r.body["fail_reason"]; !ok || v != nil {
			t.Errorf("fail_reason: want null, got %s", r.raw)
		}
		if _, lr := e.list(SingleInstanceID, SingleNodeID, ""); lr.status != st.listStatus {
			t.Errorf("at %v: ListClients %d, want %d", st.at, lr.status, st.listStatus)
		}
	}
	// Upper-case job IDs are the same job.
	if r := e.do("GET", p("/jobs/"+strings.ToUpper(jobID)), ""); r.status != 200 {
		t.Errorf("upper-case job id: %d", r.status)
	}
}

func TestJobFail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		cfg    Config
		reason string
	}{
		{"config FailShare", Config{FailShare: 1}, DefaultFailReason},
		{"fault with reason", Config{Faults: Faults{FailShare: 1, FailReason: "node is busy"}}, "node is busy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tt.cfg)
			id := e.scanDone(SingleInstanceID, SingleNodeID)
			r := e.do("GET", p("/jobs/"+id), "")
			if r.str("status") != "FAIL" || r.str("fail_reason") != tt.reason || r.str("end_time") == "" {
				t.Fatalf("job: %s", r.raw)
			}
			if _, lr := e.list(SingleInstanceID, SingleNodeID, ""); lr.status != 500 {
				t.Fatalf("ListClients after failed scan: %d", lr.status)
			}
			// A failed job does not block the next scan.
			e.scan(SingleInstanceID, SingleNodeID)
		})
	}
}

func TestConcurrentScan(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	e.scan(ClusterInstanceID, ClusterNode1ID)
	wantError(t, e.do("POST", clientsPath(ClusterInstanceID), `{"node_id":"`+ClusterNode1ID+`"}`), 400, "DCS.4957", "")
	e.scan(ClusterInstanceID, ClusterNode3ID) // another node is independent
	if got := e.sim.Stats().ActiveJobs; got != 2 {
		t.Errorf("ActiveJobs %d, want 2", got)
	}
	e.clock.Advance(DefaultJobDuration)
	e.scan(ClusterInstanceID, ClusterNode1ID) // finished: allowed again
	st := e.sim.Stats()
	if st.Scans[ScanKey(ClusterInstanceID, ClusterNode1ID)] != 2 || st.ActiveJobs != 1 || st.Jobs != 3 {
		t.Errorf("stats %+v", st)
	}
	if st.OpStatuses[OpScanClients][400] != 1 || st.Calls[OpScanClients] != 4 || st.Statuses[200] != 3 {
		t.Errorf("call stats %+v", st)
	}
}

// fetchAll pages through a node's sessions with the given query suffix.
func fetchAll(t *testing.T, e *env, inst, node, q string, limit int) ([]Client, string) {
	t.Helper()
	var all []Client
	var tm string
	for off := 0; ; off += limit {
		res, r := e.list(inst, node, q+"&limit="+strconv.Itoa(limit)+"&offset="+strconv.Itoa(off))
		if r.status != 200 {
			t.Fatalf("page at %d: %d %s", off, r.status, r.raw)
		}
		if tm == "" {
			tm = res.Time
		} else if res.Time != tm {
			t.Fatalf("time changed between pages: %q vs %q", tm, res.Time)
		}
		all = append(all, res.Clients...)
		if off+limit >= res.Count {
			if len(all) != res.Count {
				t.Fatalf("pages hold %d sessions, count %d", len(all), res.Count)
			}
			return all, tm
		}
		if len(res.Clients) != limit {
			t.Fatalf("short page at %d: %d", off, len(res.Clients))
		}
	}
}

func TestPaging(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{Seed: 4})
	e.scanDone(HAInstanceID, HAMasterNodeID)
	base, _ := fetchAll(t, e, HAInstanceID, HAMasterNodeID, "", 1000)
	if len(base) != BigNodeSessions {
		t.Fatalf("%d sessions", len(base))
	}
	ids := map[string]bool{}
	addrs := map[string]bool{}
	for i, c := range base {
		if ids[c.ID] || addrs[c.Addr] {
			t.Fatalf("duplicate id %s or addr %s", c.ID, c.Addr)
		}
		ids[c.ID], addrs[c.Addr] = true, true
		if i > 0 && cmpNumStr(base[i-1].ID, c.ID) >= 0 {
			t.Fatalf("default order is not by increasing id at %d", i)
		}
	}
	tests := []struct {
		node  string // HAMasterNodeID (12,000 sessions) or SingleNodeID (250)
		q     string
		limit int
		less  func(a, b Client) bool // non-strict order check
	}{
		{HAMasterNodeID, "&sort=idle&order=desc", 1000, func(a, b Client) bool { return a.Idle >= b.Idle }},
		{HAMasterNodeID, "&sort=age", 777, func(a, b Client) bool { return a.Age <= b.Age }},
		{HAMasterNodeID, "&sort=addr&order=asc", 1000, func(a, b Client) bool { return a.Addr <= b.Addr }},
		{SingleNodeID, "&sort=id&order=desc", 9, func(a, b Client) bool { return cmpNumStr(a.ID, b.ID) > 0 }},
		{SingleNodeID, "&sort=qbuf_free&order=desc", 50, func(a, b Client) bool { return a.QbufFree >= b.QbufFree }},
		{SingleNodeID, "&sort=name&order=asc", 1, func(a, b Client) bool { return a.Name <= b.Name }},
		{SingleNodeID, "&order=desc", 100, func(a, b Client) bool { return cmpNumStr(a.ID, b.ID) > 0 }},
	}
	e.scanDone(SingleInstanceID, SingleNodeID)
	small, _ := fetchAll(t, e, SingleInstanceID, SingleNodeID, "", 1000)
	for _, tt := range tests {
		t.Run(tt.q+"/"+tt.node[:8], func(t *testing.T) {
			inst, want := HAInstanceID, base
			if tt.node == SingleNodeID {
				inst, want = SingleInstanceID, small
			}
			got, _ := fetchAll(t, e, inst, tt.node, tt.q, tt.limit)
			seen := map[string]bool{}
			for i, c := range got {
				if seen[c.ID] {
					t.Fatalf("duplicate id %s", c.ID)
				}
				seen[c.ID] = true
				if i > 0 && !tt.less(got[i-1], c) {
					t.Fatalf("out of order at %d: %+v then %+v", i, got[i-1], c)
				}
			}
			sorted := slices.Clone(got)
			slices.SortFunc(sorted, func(a, b Client) int { return cmpNumStr(a.ID, b.ID) })
			if !slices.Equal(sorted, want) {
				t.Fatal("the pages, re-sorted by id, differ from the snapshot")
			}
		})
	}

	t.Run("addr filter", func(t *testing.T) {
		host, _, _ := net.SplitHostPort(base[100].Addr)
		want := 0
		for _, c := range base {
			if strings.HasPrefix(c.Addr, host+":") {
				want++
			}
		}
		res, _ := e.list(HAInstanceID, HAMasterNodeID, "&addr="+host+"&limit=1000")
		if res.Count != want || want < 2 {
			t.Fatalf("ip filter: count %d, want %d (>1)", res.Count, want)
		}
		res, _ = e.list(HAInstanceID, HAMasterNodeID, "&addr="+base[100].Addr)
		if res.Count != 1 || len(res.Clients) != 1 || res.Clients[0] != base[100] {
			t.Fatalf("exact filter: %+v", res)
		}
		res, _ = e.list(HAInstanceID, HAMasterNodeID, "&addr=1.2.3.4:5")
		if res.Count != 0 || res.Clients == nil || len(res.Clients) != 0 {
			t.Fatalf("no match: %+v", res)
		}
	})
	t.Run("offset past end", func(t *testing.T) {
		res, r := e.list(HAInstanceID, HAMasterNodeID, "&offset=20000")
		if r.status != 200 || res.Count != BigNodeSessions || len(res.Clients) != 0 {
			t.Fatalf("%d %+v", r.status, res.Count)
		}
	})
	t.Run("default limit", func(t *testing.T) {
		res, _ := e.list(HAInstanceID, HAMasterNodeID, "&sort=&order=&addr=&limit=&offset=")
		if len(res.Clients) != 10 || res.Clients[0] != base[0] {
			t.Fatalf("default page: %d", len(res.Clients))
		}
	})
	t.Run("stable during next scan", func(t *testing.T) {
		e.scan(HAInstanceID, HAMasterNodeID)
		again, _ := fetchAll(t, e, HAInstanceID, HAMasterNodeID, "", 1000)
		if !slices.Equal(again, base) {
			t.Fatal("snapshot changed while the next scan is running")
		}
	})
}

func TestSessionsEvolve(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{Seed: 5})
	e.scanDone(SingleInstanceID, SingleNodeID)
	first, t1 := fetchAll(t, e, SingleInstanceID, SingleNodeID, "", 1000)
	e.clock.Advance(10 * time.Minute)
	e.scanDone(SingleInstanceID, SingleNodeID)
	second, t2 := fetchAll(t, e, SingleInstanceID, SingleNodeID, "", 1000)
	if t1 == t2 {
		t.Fatalf("time did not change: %q", t1)
	}
	if len(first) != 250 || len(second) != 250 {
		t.Fatalf("counts %d, %d", len(first), len(second))
	}
	byID := map[string]Client{}
	for _, c := range first {
		byID[c.ID] = c
	}
	kept, added := 0, 0
	elapsed := int64((10*time.Minute + DefaultJobDuration + time.Millisecond) / time.Second)
	for _, c := range second {
		old, ok := byID[c.ID]
		if !ok {
			added++
			if c.Age > elapsed {
				t.Errorf("new session %s is older (%d) than the time between scans", c.ID, c.Age)
			}
			continue
		}
		kept++
		if c.Age-old.Age < elapsed-1 || c.Age-old.Age > elapsed+1 {
			t.Errorf("session %s aged %d s, want ~%d", c.ID, c.Age-old.Age, elapsed)
		}
		if c.Addr != old.Addr || c.Name != old.Name {
			t.Errorf("session %s changed identity", c.ID)
		}
		if c.Idle > c.Age {
			t.Errorf("session %s idle %d > age %d", c.ID, c.Idle, c.Age)
		}
	}
	if added == 0 || kept == 0 || kept+added != 250 {
		t.Fatalf("kept %d, added %d", kept, added)
	}
	// Determinism: same seed, same scan history → same sessions.
	e2 := newEnv(t, Config{Seed: 5})
	e2.scanDone(SingleInstanceID, SingleNodeID)
	again, _ := fetchAll(t, e2, SingleInstanceID, SingleNodeID, "", 1000)
	if !slices.Equal(again, first) {
		t.Fatal("same seed gave different sessions")
	}
	e3 := newEnv(t, Config{Seed: 6})
	e3.scanDone(SingleInstanceID, SingleNodeID)
	other, _ := fetchAll(t, e3, SingleInstanceID, SingleNodeID, "", 1000)
	if slices.Equal(other, first) {
		t.Fatal("different seeds gave the same sessions")
	}
}

func TestSessionRealism(t *testing.T) {
	t.Parallel()
	cs := generateSessions(9, SingleNodeID, "192.168.1.11:6379", 5000)
	perIP := map[string]int{}
	var named, pubsub, longIdle, nonZeroDB int
	for _, c := range cs {
		host, _, err := net.SplitHostPort(c.Addr)
		if err != nil {
			t.Fatalf("addr %q", c.Addr)
		}
		perIP[host]++
		if c.Name != "" {
			named++
		}
		if c.Flags == "P" {
			pubsub++
			if c.Sub+c.Psub == 0 {
				t.Errorf("pubsub session without subscriptions: %+v", c)
			}
		}
		if c.Idle >= 3600 {
			longIdle++
		}
		if c.DB != "0" {
			nonZeroDB++
		}
		if c.Idle > c.Age || c.Multi != -1 || c.Events != "r" || c.Network != "ipv4" || c.User == "" {
			t.Fatalf("implausible session %+v", c)
		}
	}
	maxPerIP := 0
	for _, n := range perIP {
		maxPerIP = max(maxPerIP, n)
	}
	if maxPerIP < 200 || len(perIP) < 20 || named == 0 || named == len(cs) || pubsub == 0 || longIdle == 0 || nonZeroDB == 0 {
		t.Fatalf("distribution: maxPerIP %d, ips %d, named %d, pubsub %d, longIdle %d, db!=0 %d",
			maxPerIP, len(perIP), named, pubsub, longIdle, nonZeroDB)
	}
}

func TestGenerate50k(t *testing.T) {
	t.Parallel()
	start := time.Now()
	cs := generateSessions(1, "n", "10.0.0.1:6379", 50_000)
	next := evolveSessions(1, "n", "10.0.0.1:6379", 1, cs, time.Minute)
	el := time.Since(start)
	if len(cs) != 50_000 || len(next) != 50_000 {
		t.Fatalf("%d, %d sessions", len(cs), len(next))
	}
	limit := time.Second
	if raceEnabled {
		limit = 4 * time.Second // the race detector slows allocation-heavy code several-fold
	}
	if el > limit {
		t.Fatalf("generating and evolving 50,000 sessions took %v", el)
	}
	t.Logf("50k generate+evolve: %v", el)
	addrs := make(map[string]bool, len(cs))
	for _, c := range cs {
		if addrs[c.Addr] {
			t.Fatalf("duplicate addr %s", c.Addr)
		}
		addrs[c.Addr] = true
	}
}

func TestTimeFormats(t *testing.T) {
	t.Parallel()
	tests := []struct {
		format string
		want   string
	}{
		{"", "2026-11-28T10:00:02.123Z"},
		{TimeRFC3339, "2026-11-28T10:00:02.123Z"},
		{TimeEpochMS, "1795860002123"},
		{TimeDateTime, "2026-11-28 10:00:02"},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, Config{TimeFormat: tt.format})
			e.scanDone(SingleInstanceID, SingleNodeID)
			res, _ := e.list(SingleInstanceID, SingleNodeID, "")
			if res.Time != tt.want {
				t.Fatalf("time %q, want %q", res.Time, tt.want)
			}
		})
	}
	if _, err := New(Config{TimeFormat: "unix"}); err == nil {
		t.Fatal("bad time format accepted")
	}
}

func TestQuirks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{Quirks: true, Seed: 7})
	e.scanDone(SingleInstanceID, SingleNodeID)
	r := e.do("GET", clientsPath(SingleInstanceID)+"?node_id="+SingleNodeID+"&limit=100", "")
	var body struct {
		Count   int              `json:"count"`
		Clients []map[string]any `json:"clients"`
	}
	if err := json.Unmarshal(r.raw, &body); err != nil || body.Count != 250 || len(body.Clients) != 100 {
		t.Fatalf("%v %s", err, r.raw)
	}
	if _, ok := r.body["update_time"]; !ok {
		t.Error("no unknown top-level field")
	}
	nulls := 0
	for _, c := range body.Clients {
		if _, ok := c["idle"].(string); !ok {
			t.Fatalf("idle not a string: %v", c["idle"])
		}
		if _, ok := c["age"].(string); !ok {
			t.Fatalf("age not a string: %v", c["age"])
		}
		if _, ok := c["db"].(float64); !ok {
			t.Fatalf("db not a number: %v", c["db"])
		}
		if _, ok := c["tot_mem"]; !ok {
			t.Fatal("no unknown field tot_mem")
		}
		for _, k := range []string{"name", "network", "peer", "user", "cmd"} {
			if v, ok := c[k]; ok && v == nil {
				nulls++
			}
		}
	}
	if nulls == 0 {
		t.Fatal("no null fields")
	}
}

func TestStatsAndInventory(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	e.do("GET", p("/instances"), "")
	e.do("GET", p("/instances/bad"), "")
	e.do("GET", "/nope", "")
	e.scan(SingleInstanceID, SingleNodeID)
	st := e.sim.Stats()
	if st.Calls[OpListInstances] != 1 || st.Calls[OpShowInstance] != 1 || st.Calls[""] != 1 ||
		st.Statuses[200] != 2 || st.Statuses[400] != 1 || st.Statuses[404] != 1 ||
		st.Scans[ScanKey(SingleInstanceID, SingleNodeID)] != 1 || st.ActiveJobs != 1 {
		t.Fatalf("stats %+v", st)
	}
	e.clock.Advance(time.Minute)
	if got := e.sim.Stats().ActiveJobs; got != 0 {
		t.Fatalf("active jobs after completion: %d", got)
	}
	inv := e.sim.Inventory()
	inv.Instances[0].Name = "mutated"
	if e.sim.Inventory().Instances[0].Name != "dcs-single" {
		t.Fatal("Inventory() returned shared state")
	}
	e.sim.Reset()
	if st := e.sim.Stats(); len(st.Calls) != 0 || st.Jobs != 0 {
		t.Fatalf("after Reset: %+v", st)
	}
	if _, r := e.list(SingleInstanceID, SingleNodeID, ""); r.status != 500 {
		t.Fatalf("snapshot survived Reset: %d", r.status)
	}
}
