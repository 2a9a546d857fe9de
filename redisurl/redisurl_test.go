package redisurl

import (
	"context"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url    string
		kind   Kind
		addrs  string
		db     int
		master string
		user   string
		pass   string
		tls    bool
	}{
		{url: "redis://127.0.0.1:6379", kind: Single, addrs: "127.0.0.1:6379"},
		{url: "redis://u:p%40ss@h:6380/3?dial_timeout=2s", kind: Single, addrs: "h:6380", db: 3, user: "u", pass: "p@ss"},
		{url: "rediss://:pw@h:6380/0", kind: Single, addrs: "h:6380", pass: "pw", tls: true},
		{url: "redis-sentinel://:pw@s1:26379,s2:26379/mymaster/2?sentinel_password=sp", kind: Sentinel,
			addrs: "s1:26379,s2:26379", master: "mymaster", db: 2, pass: "pw"},
		{url: "redis-sentinel://s1:26379/mymaster", kind: Sentinel, addrs: "s1:26379", master: "mymaster"},
		{url: "redis-cluster://u:pw@c1:7000,c2:7001,c3:7002", kind: Cluster, addrs: "c1:7000,c2:7001,c3:7002", user: "u", pass: "pw"},
		{url: "rediss-cluster://c1:7000", kind: Cluster, addrs: "c1:7000", tls: true},
	}
	for _, tc := range tests {
		p, err := Parse(tc.url)
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		o := p.Options
		if p.Kind != tc.kind || strings.Join(o.Addrs, ",") != tc.addrs || o.DB != tc.db || o.MasterName != tc.master ||
			o.Username != tc.user || o.Password != tc.pass || (o.TLSConfig != nil) != tc.tls {
			t.Errorf("%s: got kind %s addrs %v db %d master %q user %q pass %q tls %v", tc.url, p.Kind, o.Addrs, o.DB,
				o.MasterName, o.Username, o.Password, o.TLSConfig != nil)
		}
	}
}

func TestParseErrorsNameThePartAndHideThePassword(t *testing.T) {
	t.Parallel()
	for url, want := range map[string]string{
		"":                                     "empty",
		"127.0.0.1:6379":                       "missing scheme",
		"http://secret@h:1":                    "unknown scheme",
		"redis-sentinel://:secret@h:26379":     "master name",
		"redis-sentinel://:secret@h:26379/m/x": `db "x"`,
		"redis-sentinel://:secret@h/m":         "needs a port",
		"redis-cluster://:secret@h:1/3":        "no path",
		"redis-sentinel://h:1/m?foo=secret":    `unknown option "foo"`,
		"redis://:secret@h:1/notadb":           "REDIS_URL",
	} {
		_, err := Parse(url)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want %q", url, err, want)
			continue
		}
		if strings.Contains(err.Error(), "secret@") || strings.Contains(err.Error(), ":secret") {
			t.Errorf("Parse(%q) leaks the password: %v", url, err)
		}
	}
	if got := Redact("redis-sentinel://u:secret@h:1/m?sentinel_password=s2"); strings.Contains(got, "secret") || strings.Contains(got, "s2") {
		t.Errorf("Redact = %s", got)
	}
}

func TestNewClientTalksToRedis(t *testing.T) {
	t.Parallel()
	p, err := Parse("redis://127.0.0.1:6379/0")
	if err != nil {
		t.Fatal(err)
	}
	c := p.NewClient()
	defer c.Close()
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("ping: %v", err)
	}
}
