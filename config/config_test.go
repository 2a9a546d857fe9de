package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

var good = map[string]string{
	"DCS_REGION": "ap-southeast-1", "HUAWEICLOUD_SDK_PROJECT_ID": "0123456789abcdef0123456789abcdef",
	"HUAWEICLOUD_SDK_AK": "AK", "HUAWEICLOUD_SDK_SK": "SK-top-secret",
}

func with(kv ...string) map[string]string {
	m := map[string]string{}
	for k, v := range good {
		m[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestLoadDefaultsAndPrecedence(t *testing.T) {
	t.Parallel()
	c, err := Load([]string{"-poll-first", "3s"}, env(with("POLL_FIRST", "5s", "DEADLINE", "x", "JOB_DEADLINE", "2m")), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.PollFirst != 3*time.Second {
		t.Errorf("flag did not win over env: %v", c.PollFirst)
	}
	if c.Deadline != 2*time.Minute || c.Concurrency != 20 || c.Weights.Followup != 6 || c.APIBudget.N != 10 {
		t.Errorf("defaults/env: %+v", c)
	}
	if c.RegionKey() != "ap-southeast-1" || c.Auth() == nil {
		t.Error("region key or auth")
	}
	// Secrets do not print.
	if s := fmt.Sprintf("%v %+v", c, *c); strings.Contains(s, "SK-top-secret") {
		t.Errorf("config prints the secret key: %s", s)
	}
}

func TestLoadErrorsNameTheField(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, with("POLL_MAX", "soon"), "$POLL_MAX"},
		{[]string{"-concurrency", "0"}, with(), "-concurrency: 0 is below the minimum 1"},
		{nil, with("QUEUE_WEIGHTS", "followup=1"), "$QUEUE_WEIGHTS"},
		{nil, with("DCS_API_BUDGET", "fast"), "$DCS_API_BUDGET"},
		{nil, with("REDIS_URL", "mysql://x"), "REDIS_URL"},
		{nil, with("DCS_REGION", ""), "DCS_ENDPOINT or DCS_REGION"},
		{nil, with("DCS_REGION", "Mars Base"), "DCS_REGION"},
		{nil, with("HUAWEICLOUD_SDK_PROJECT_ID", "p/../x"), "HUAWEICLOUD_SDK_PROJECT_ID"},
		{nil, with("HUAWEICLOUD_SDK_SK", ""), "give both"},
		{nil, with("DCS_AUTH_TOKEN", "t"), "more than one"},
		{nil, with("HUAWEICLOUD_SDK_AK", "", "HUAWEICLOUD_SDK_SK", ""), "credentials: set"},
		{nil, with("DCS_IAM_USER", "u"), "give all three"},
		{nil, with("POLL_NEXT", "20s", "POLL_MAX", "10s"), "POLL_MAX 10s is shorter"},
		{nil, with("KEY_PREFIX", "a{b}"), "KEY_PREFIX"},
		{nil, with("LOG_LEVEL", "loud"), "$LOG_LEVEL"},
		{[]string{"extra"}, with(), `unexpected argument "extra"`},
	}
	for _, tc := range tests {
		_, err := Load(tc.args, env(tc.env), &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%v) = %v, want %q", tc.args, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "SK-top-secret") {
			t.Errorf("error leaks the secret: %v", err)
		}
	}
}

func TestHelpListsEveryEnvVar(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	_, err := Load([]string{"-h"}, env(nil), &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v", err)
	}
	for _, s := range settings {
		if !strings.Contains(out.String(), "$"+s.env) {
			t.Errorf("-h does not mention $%s", s.env)
		}
	}
}

func TestDemoNeedsNoCredentials(t *testing.T) {
	t.Parallel()
	if _, err := Load([]string{"-demo"}, env(nil), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
}

// The README's configuration table documents every variable.
func TestREADMEDocumentsEverySetting(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range settings {
		if !strings.Contains(string(b), "`"+s.env+"`") || !strings.Contains(string(b), "-"+s.flag) {
			t.Errorf("README.md does not document -%s / $%s", s.flag, s.env)
		}
	}
}
