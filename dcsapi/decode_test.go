package dcsapi

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestClientInfoTolerantDecoding(t *testing.T) {
	t.Parallel()
	want := ClientInfo{ID: "7", Addr: "10.0.0.1:5000", FD: "12", Name: "orders", Cmd: "get", Age: 3600, Idle: 42,
		DB: "3", Flags: "N", Sub: 0, Psub: 0, Multi: -1, Qbuf: 26, QbufFree: 32742, Obl: 0, Oll: 0, Omem: 0,
		Events: "r", Network: "ipv4", Peer: "192.168.0.5:6379", User: "default"}
	tests := map[string]string{
		"current types":                          `{"id":"7","addr":"10.0.0.1:5000","fd":"12","name":"orders","cmd":"get","age":3600,"idle":42,"db":"3","flags":"N","sub":0,"psub":0,"multi":-1,"qbuf":26,"qbuf_free":32742,"obl":0,"oll":0,"omem":0,"events":"r","network":"ipv4","peer":"192.168.0.5:6379","user":"default"}`,
		"numbers as strings, strings as numbers": `{"id":7,"addr":"10.0.0.1:5000","fd":12,"name":"orders","cmd":"get","age":"3600","idle":"42","db":3,"flags":"N","sub":"0","psub":"","multi":"-1","qbuf":"26","qbuf_free":32742.0,"obl":null,"oll":"0","omem":0,"events":"r","network":"ipv4","peer":"192.168.0.5:6379","user":"default"}`,
		"nulls and unknown fields":               `{"id":"7","addr":"10.0.0.1:5000","fd":"12","name":"orders","cmd":"get","age":3600,"idle":42,"db":"3","flags":"N","sub":null,"psub":null,"multi":-1,"qbuf":26,"qbuf_free":32742,"obl":null,"oll":null,"omem":null,"events":"r","network":"ipv4","peer":"192.168.0.5:6379","user":"default","tot-mem":22298,"resp":2,"lib-name":null,"extra":{"nested":[1,2]}}`,
	}
	for name, in := range tests {
		var got ClientInfo
		if err := json.Unmarshal([]byte(in), &got); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got != want {
			t.Errorf("%s:\n got %+v\nwant %+v", name, got, want)
		}
	}
	// Marshalling uses the 21 DCS field names and canonical types.
	out, _ := json.Marshal(want)
	var m map[string]any
	_ = json.Unmarshal(out, &m)
	if len(m) != 21 {
		t.Errorf("ClientInfo marshals %d fields, want 21: %s", len(m), out)
	}
	if _, ok := m["qbuf_free"].(float64); !ok || m["db"] != "3" {
		t.Errorf("marshalled types: %s", out)
	}
	for _, bad := range []string{`{"idle":"abc"}`, `{"age":{"x":1}}`, `{"name":["a"]}`, `[1,2]`, `{"idle":1e40}`} {
		var c ClientInfo
		if err := json.Unmarshal([]byte(bad), &c); err == nil {
			t.Errorf("%s decoded without error: %+v", bad, c)
		}
	}
}

func TestJobDecoding(t *testing.T) {
	t.Parallel()
	// The documented example (OTC-DCS rst).
	in := `{"job_id":"ff8080818822bbf70188235afc24141a","job_type":"masterStandbySwapJob","status":"SUCCESS","begin_time":"1684191545379","end_time":"1684191548248","fail_reason":null}`
	var j Job
	if err := json.Unmarshal([]byte(in), &j); err != nil {
		t.Fatal(err)
	}
	want := Job{JobID: "ff8080818822bbf70188235afc24141a", JobType: "masterStandbySwapJob", Status: JobSuccess,
		BeginTime: time.UnixMilli(1684191545379).UTC(), EndTime: time.UnixMilli(1684191548248).UTC()}
	if !reflect.DeepEqual(j, want) {
		t.Errorf("got %+v\nwant %+v", j, want)
	}
	if !j.Status.Done() || JobRunning.Done() || JobInit.Done() || !JobFail.Done() {
		t.Error("Done() wrong")
	}
	in = `{"job_id":"a","status":"FAIL","begin_time":1684191545379,"end_time":"","fail_reason":"node unreachable","entities":{}}`
	if err := json.Unmarshal([]byte(in), &j); err != nil {
		t.Fatal(err)
	}
	if j.FailReason != "node unreachable" || !j.EndTime.IsZero() || j.BeginTime.UnixMilli() != 1684191545379 {
		t.Errorf("got %+v", j)
	}
}

func TestParseTimeForms(t *testing.T) {
	t.Parallel()
	ref := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"1795860000000":             ref,
		"1795860000":                ref,
		"2026-11-28T10:00:00Z":      ref,
		"2026-11-28T10:00:00.000Z":  ref,
		"2026-11-28T18:00:00+08:00": ref,
		"2026-11-28T18:00:00+0800":  ref,
		"2026-11-28T10:00:00":       ref,
		"2026-11-28 10:00:00":       ref,
		"2026/11/28 10:00:00":       ref,
		"":                          {},
	} {
		got, err := ParseTime(in)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"yesterday", "99999999999999999", "2026-13-01"} {
		if _, err := ParseTime(bad); err == nil {
			t.Errorf("ParseTime(%q) accepted", bad)
		}
	}
	// Unknown formats keep the raw text and do not fail decoding.
	var l ClientList
	if err := json.Unmarshal([]byte(`{"time":"last tuesday","count":"2","clients":null}`), &l); err != nil {
		t.Fatal(err)
	}
	if l.Time.Raw != "last tuesday" || !l.Time.Time.IsZero() || l.Count != 2 || l.Clients != nil {
		t.Errorf("got %+v", l)
	}
	b, _ := json.Marshal(l.Time)
	if string(b) != `"last tuesday"` {
		t.Errorf("FlexTime round trip: %s", b)
	}
}

func TestInstanceAndNodeDecoding(t *testing.T) {
	t.Parallel()
	var in Instance
	if err := json.Unmarshal([]byte(`{"instance_id":"5560df16-cebf-4473-95c4-d1b573c16e79","name":"a","engine":"Redis","engine_version":"6.0","status":"RUNNING","cache_mode":"cluster","capacity":"8","max_memory":8192,"used_memory":null,"max_clients":"10000","port":6379,"az_codes":["az1"],"tags":[{"key":"k"}]}`), &in); err != nil {
		t.Fatal(err)
	}
	if in.Capacity != 8 || in.MaxClients != 10000 || in.CacheMode != "cluster" || in.Port != 6379 || len(in.AZCodes) != 1 {
		t.Errorf("got %+v", in)
	}
	var n Node
	if err := json.Unmarshal([]byte(`{"logical_node_id":"l1","node_role":"redis-proxy","node_type":"proxy","node_port":6379,"node_id":"n1","status":"Active","dimensions":[{"name":"x"}]}`), &n); err != nil {
		t.Fatal(err)
	}
	if n.NodePort != "6379" || !n.IsProxy() || n.NodeID != "n1" {
		t.Errorf("got %+v", n)
	}
}

func TestSelectScanTargets(t *testing.T) {
	t.Parallel()
	ids := func(ns []Node) string {
		var s []string
		for _, n := range ns {
			s = append(s, n.NodeID)
		}
		return strings.Join(s, ",")
	}
	cluster := []Node{
		{NodeID: "m1", NodeRole: "redis-server", NodeType: "master", Status: "Active"},
		{NodeID: "s1", NodeRole: "redis-server", NodeType: "slave", Status: "Active"},
		{NodeID: "m2", NodeRole: "redis-server", NodeType: "master", Status: "Creating"},
		{NodeID: "", NodeRole: "redis-server", NodeType: "master", Status: "Active"},
	}
	if got := ids(SelectScanTargets(cluster)); got != "m1,s1" {
		t.Errorf("data nodes: %s", got)
	}
	proxy := append([]Node{{NodeID: "p1", NodeRole: "redis-proxy", NodeType: "proxy", Status: "Active"}}, cluster...)
	if got := ids(SelectScanTargets(proxy)); got != "p1" {
		t.Errorf("proxy nodes: %s", got)
	}
}

func TestValidateID(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"5560df16-cebf-4473-95c4-d1b573c16e79", "ff8080818822bbf70188235afc24141a", "a_b-C"} {
		if err := ValidateID("node_id", ok); err != nil {
			t.Errorf("%q rejected: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "..", "a/b", "a?b", "a#b", "a%2Fb", "a b", "a.b", "é", strings.Repeat("a", 65)} {
		err := ValidateID("node_id", bad)
		if err == nil {
			t.Errorf("%q accepted", bad)
			continue
		}
		if !strings.Contains(err.Error(), "node_id") {
			t.Errorf("error %q does not name the field", err)
		}
	}
}

// ClientList takes a fast path for documented types and falls back to the
// tolerant decoder on any quirk; both give the same result.
func TestClientListFastAndTolerantPathsAgree(t *testing.T) {
	t.Parallel()
	canonical := `{"time":"1795860000000","count":2,"clients":[` +
		`{"id":"1","addr":"a:1","age":5,"idle":7,"db":"0","multi":-1,"name":"x"},` +
		`{"id":"2","addr":"b:2","age":6,"idle":8,"db":"1","multi":-1,"name":"y\u00e9"}]}`
	quirky := `{"time":1795860000000,"count":"2","clients":[` +
		`{"id":1,"addr":"a:1","age":"5","idle":"7","db":0,"multi":"-1","name":"x","extra":[1]},` +
		`{"id":"2","addr":"b:2","age":6.0,"idle":8,"db":"1","multi":-1,"name":"yé","sub":null}]}`
	var a, b ClientList
	if err := json.Unmarshal([]byte(canonical), &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(quirky), &b); err != nil {
		t.Fatal(err)
	}
	if len(a.Clients) != 2 || !reflect.DeepEqual(a.Clients, b.Clients) || a.Count != b.Count || !a.Time.Time.Equal(b.Time.Time) {
		t.Errorf("fast path %+v\ntolerant path %+v", a, b)
	}
	var bad ClientList
	if err := json.Unmarshal([]byte(`{"clients":[{"idle":"soon"}]}`), &bad); err == nil {
		t.Error("an unparseable number was accepted")
	}
}
