package results

import (
	"encoding/json"
	"strings"
	"testing"
)

// The JSON form (enqueue result -o json) uses snake_case names and the DCS
// names for client fields.
func TestSnapshotJSONNames(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(genSnapshot(3, 1))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{`"id"`, `"instance_id"`, `"node_id"`, `"clean_cache"`, `"requested_at"`, `"completion_path"`,
		`"dcs_time"`, `"dcs_time_raw"`, `"fetched_at"`, `"clients"`, `"qbuf_free"`, `"psub"`, `"by_client_ip"`,
		`"others_sessions"`, `"idle_threshold_seconds"`, `"oldest_connection"`, `"new_count"`, `"previous_id"`} {
		if !strings.Contains(string(b), name+":") {
			t.Errorf("JSON has no %s", name)
		}
	}
	for _, bad := range []string{`"ID"`, `"DCSTime"`, `"QbufFree"`, `"FetchedAt"`} {
		if strings.Contains(string(b), bad) {
			t.Errorf("JSON has Go name %s", bad)
		}
	}
}
