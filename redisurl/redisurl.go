// Package redisurl turns a REDIS_URL into a go-redis UniversalClient, for a
// single server, a Sentinel-managed master or a Redis Cluster:
//
//	redis://[user:password@]host:port[/db][?dial_timeout=5s&...]
//	rediss://...                      same, over TLS
//	redis-sentinel://[user:password@]host1:26379,host2:26379/<master>[/db][?sentinel_password=...]
//	redis-cluster://[user:password@]host1:7000,host2:7001[?...]   (also rediss-cluster:// for TLS)
//
// Options in the query are those of go-redis's ParseURL (dial_timeout,
// read_timeout, write_timeout, pool_size, ...). Single-server URLs are parsed by
// go-redis itself; the Sentinel and Cluster forms are translated to it.
package redisurl

import (
	"crypto/tls"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Kind is the topology a URL names.
type Kind string

// Topologies.
const (
	Single   Kind = "single"
	Sentinel Kind = "sentinel"
	Cluster  Kind = "cluster"
)

// Parsed is a parsed REDIS_URL.
type Parsed struct {
	Kind    Kind
	Options *redis.UniversalOptions
}

// Redact returns u with any password (or a lone user part, which some
// clients read as a password) replaced by "REDACTED", for logs.
func Redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparseable URL)"
	}
	if p.User != nil {
		if _, has := p.User.Password(); has {
			p.User = url.UserPassword(p.User.Username(), "REDACTED")
		} else {
			p.User = url.User("REDACTED") // a lone user part may be a password
		}
	}
	q := p.Query()
	for _, k := range []string{"password", "sentinel_password"} {
		if q.Has(k) {
			q.Set(k, "REDACTED")
		}
	}
	p.RawQuery = q.Encode()
	return p.String()
}

// Parse parses a REDIS_URL. Errors say which part is wrong and never contain
// the password.
func Parse(raw string) (*Parsed, error) {
	if raw == "" {
		return nil, fmt.Errorf("REDIS_URL is empty")
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, fmt.Errorf("REDIS_URL %q: missing scheme (want redis://, rediss://, redis-sentinel:// or redis-cluster://)", Redact(raw))
	}
	switch scheme {
	case "redis", "rediss":
		o, err := redis.ParseURL(raw)
		if err != nil {
			return nil, fmt.Errorf("REDIS_URL %s: %v", Redact(raw), scrub(err, raw))
		}
		return &Parsed{Kind: Single, Options: &redis.UniversalOptions{
			Addrs: []string{o.Addr}, Username: o.Username, Password: o.Password, DB: o.DB,
			TLSConfig: o.TLSConfig, DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
			PoolSize: o.PoolSize, MinIdleConns: o.MinIdleConns, MaxRetries: o.MaxRetries, ClientName: o.ClientName,
		}}, nil
	case "redis-cluster", "rediss-cluster":
		hosts, path, q, user, err := splitMulti(rest, raw)
		if err != nil {
			return nil, err
		}
		if path != "" && path != "/" {
			return nil, fmt.Errorf("REDIS_URL %s: a cluster URL has no path (Redis Cluster has only db 0)", Redact(raw))
		}
		base := "redis"
		if scheme == "rediss-cluster" {
			base = "rediss"
		}
		u := &url.URL{Scheme: base, Host: hosts[0], User: user}
		for _, h := range hosts[1:] {
			q.Add("addr", h)
		}
		u.RawQuery = q.Encode()
		o, err := redis.ParseClusterURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("REDIS_URL %s: %v", Redact(raw), scrub(err, raw))
		}
		return &Parsed{Kind: Cluster, Options: &redis.UniversalOptions{
			Addrs: o.Addrs, Username: o.Username, Password: o.Password, TLSConfig: o.TLSConfig,
			DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
			PoolSize: o.PoolSize, MaxRedirects: o.MaxRedirects, ClientName: o.ClientName,
		}}, nil
	case "redis-sentinel", "rediss-sentinel":
		hosts, path, q, user, err := splitMulti(rest, raw)
		if err != nil {
			return nil, err
		}
		parts := strings.Split(strings.Trim(path, "/"), "/")
		if len(parts) == 0 || parts[0] == "" || len(parts) > 2 {
			return nil, fmt.Errorf("REDIS_URL %s: want redis-sentinel://host:port[,host:port]/<master name>[/<db>]", Redact(raw))
		}
		o := &redis.UniversalOptions{Addrs: hosts, MasterName: parts[0]}
		if len(parts) == 2 {
			if o.DB, err = strconv.Atoi(parts[1]); err != nil || o.DB < 0 {
				return nil, fmt.Errorf("REDIS_URL %s: db %q is not a number >= 0", Redact(raw), parts[1])
			}
		}
		if user != nil {
			o.Username = user.Username()
			o.Password, _ = user.Password()
		}
		o.SentinelUsername = q.Get("sentinel_username")
		o.SentinelPassword = q.Get("sentinel_password")
		if scheme == "rediss-sentinel" {
			o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		for k := range q {
			if k != "sentinel_username" && k != "sentinel_password" {
				return nil, fmt.Errorf("REDIS_URL %s: unknown option %q for a sentinel URL", Redact(raw), k)
			}
		}
		return &Parsed{Kind: Sentinel, Options: o}, nil
	}
	return nil, fmt.Errorf("REDIS_URL %s: unknown scheme %q (want redis, rediss, redis-sentinel or redis-cluster)", Redact(raw), scheme)
}

// splitMulti parses "[user:pass@]h1:p1,h2:p2[/path][?query]".
func splitMulti(rest, raw string) (hosts []string, path string, q url.Values, user *url.Userinfo, err error) {
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		if q, err = url.ParseQuery(rest[i+1:]); err != nil {
			return nil, "", nil, nil, fmt.Errorf("REDIS_URL %s: bad query: %v", Redact(raw), err)
		}
		rest = rest[:i]
	} else {
		q = url.Values{}
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		cred := rest[:i]
		rest = rest[i+1:]
		name, pass, hasPass := strings.Cut(cred, ":")
		if name, err = url.PathUnescape(name); err == nil && hasPass {
			pass, err = url.PathUnescape(pass)
		}
		if err != nil {
			return nil, "", nil, nil, fmt.Errorf("REDIS_URL %s: bad user or password encoding", Redact(raw))
		}
		if hasPass {
			user = url.UserPassword(name, pass)
		} else {
			user = url.User(name)
		}
	}
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		path = rest[i:]
		rest = rest[:i]
	}
	for _, h := range strings.Split(rest, ",") {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if !strings.Contains(h, ":") {
			return nil, "", nil, nil, fmt.Errorf("REDIS_URL %s: address %q needs a port", Redact(raw), h)
		}
		hosts = append(hosts, h)
	}
	if len(hosts) == 0 {
		return nil, "", nil, nil, fmt.Errorf("REDIS_URL %s: no host", Redact(raw))
	}
	return hosts, path, q, user, nil
}

// scrub removes the URL (and so the password) from a go-redis parse error.
func scrub(err error, raw string) string {
	return strings.ReplaceAll(err.Error(), raw, "<url>")
}

// NewClient returns the client the parsed URL names.
func (p *Parsed) NewClient() redis.UniversalClient {
	switch p.Kind {
	case Cluster:
		return redis.NewClusterClient(p.Options.Cluster())
	case Sentinel:
		return redis.NewFailoverClient(p.Options.Failover())
	}
	return redis.NewClient(p.Options.Simple())
}
