package dcsapi

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Every decoder of a DCS response is fuzzed: none may panic, and what decodes
// must survive a marshal/unmarshal round trip unchanged.

func addJSONSeeds(f *testing.F, seeds ...string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	files, _ := filepath.Glob("testdata/errors/*")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
}

func FuzzDecodeClientList(f *testing.F) {
	addJSONSeeds(f,
		`{"time":"2026-11-28T10:00:00Z","count":1,"clients":[{"id":"1","addr":"1.2.3.4:5","age":"3","idle":4,"db":0}]}`,
		`{"time":1795860000000,"count":"0","clients":null}`, `{"clients":[null,{}]}`, `null`, `[]`)
	f.Fuzz(func(t *testing.T, data []byte) {
		var l ClientList
		if json.Unmarshal(data, &l) != nil {
			return
		}
		b, err := json.Marshal(l)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		var again ClientList
		if err := json.Unmarshal(b, &again); err != nil {
			t.Fatalf("round trip of %s: %v", b, err)
		}
		if again.Count != l.Count || len(again.Clients) != len(l.Clients) || again.Time.Raw != l.Time.Raw {
			t.Fatalf("round trip changed %+v into %+v", l, again)
		}
		for i := range l.Clients {
			if again.Clients[i] != l.Clients[i] {
				t.Fatalf("client %d changed: %+v vs %+v", i, l.Clients[i], again.Clients[i])
			}
		}
	})
}

func FuzzDecodeJob(f *testing.F) {
	addJSONSeeds(f,
		`{"job_id":"ff8080818822bbf70188235afc24141a","job_type":"x","status":"SUCCESS","begin_time":"1684191545379","end_time":"1684191548248","fail_reason":null}`,
		`{"status":"FAIL","begin_time":1,"end_time":"","fail_reason":7}`)
	f.Fuzz(func(t *testing.T, data []byte) {
		var j Job
		if json.Unmarshal(data, &j) != nil {
			return
		}
		_ = j.Status.Done()
		if _, err := json.Marshal(j); err != nil {
			t.Fatalf("marshal: %v", err)
		}
	})
}

func FuzzDecodeInstanceAndNodes(f *testing.F) {
	addJSONSeeds(f,
		`{"instance_num":1,"instances":[{"instance_id":"i","capacity":"2","max_clients":10000,"az_codes":null}]}`,
		`{"instance_id":"i","total":"1","nodes":[{"node_id":"n","node_port":6379,"node_role":"redis-proxy"}]}`)
	f.Fuzz(func(t *testing.T, data []byte) {
		var il struct {
			InstanceNum FlexInt    `json:"instance_num"`
			Instances   []Instance `json:"instances"`
		}
		_ = json.Unmarshal(data, &il)
		var in Instance
		if json.Unmarshal(data, &in) == nil {
			b, _ := json.Marshal(in)
			var again Instance
			if err := json.Unmarshal(b, &again); err != nil || again.InstanceID != in.InstanceID || again.MaxClients != in.MaxClients {
				t.Fatalf("instance round trip: %v %+v %+v", err, in, again)
			}
		}
		var nl struct {
			Total FlexInt `json:"total"`
			Nodes []Node  `json:"nodes"`
		}
		if json.Unmarshal(data, &nl) == nil {
			_ = SelectScanTargets(nl.Nodes)
		}
	})
}

func FuzzParseAPIError(f *testing.F) {
	addJSONSeeds(f, `{"error":{"error":{"code":1}}}`, `{"error_code":["x"]}`, "\x00\xff")
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, status := range []int{400, 401, 429, 500} {
			e := parseAPIError(OpShowJobInfo, status, http.Header{"Retry-After": {string(data)}}, data, time.Now())
			if e.Status != status || len(e.Message) > maxErrorMessage+3 || len(e.Code) > 64+3 {
				t.Fatalf("bad APIError %+v", e)
			}
			if e.RetryAfter < 0 {
				t.Fatalf("negative RetryAfter %v", e.RetryAfter)
			}
			_ = e.Error()
			if Classify(e) == ClassNone {
				t.Fatal("an API error classified as none")
			}
		}
	})
}

func FuzzFlexScalars(f *testing.F) {
	for _, s := range []string{`1`, `"1"`, `1.5`, `null`, `""`, `"x"`, `true`, `{}`, `-0`, `1e400`, `"1795860000000"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var i FlexInt
		_ = i.UnmarshalJSON(data)
		var s FlexString
		_ = s.UnmarshalJSON(data)
		var tm FlexTime
		if tm.UnmarshalJSON(data) == nil {
			if _, err := json.Marshal(tm); err != nil {
				t.Fatalf("FlexTime marshal: %v", err)
			}
		}
	})
}
