package tasks

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dcsjobs/dcsjobs/dcsapi"
)

// InstanceInfo is what the worker keeps about an instance between audits:
// its maxclients (for "sessions near the limit" alerts) and type.
type InstanceInfo struct {
	InstanceID string
	Name       string
	CacheMode  string
	MaxClients int64
	UpdatedAt  time.Time
}

// Instances caches ShowInstance answers in Redis, one hash per instance,
// refreshed at most once per RefreshEvery by whichever worker fetches a
// snapshot of the instance.
type Instances struct {
	rdb          redis.UniversalClient
	prefix       string
	ttl          time.Duration
	RefreshEvery time.Duration
}

// NewInstances returns the cache; entries live ttl (the retention).
func NewInstances(rdb redis.UniversalClient, prefix string, ttl time.Duration) *Instances {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if ttl <= 0 {
		ttl = 7 * 24 * time.Hour
	}
	return &Instances{rdb: rdb, prefix: prefix, ttl: ttl, RefreshEvery: time.Hour}
}

func (c *Instances) key(id string) string { return c.prefix + ":instance:" + id }

// Get reads the cached info; ok is false when there is none.
func (c *Instances) Get(ctx context.Context, id string) (InstanceInfo, bool, error) {
	m, err := c.rdb.HGetAll(ctx, c.key(id)).Result()
	if err != nil || len(m) == 0 {
		return InstanceInfo{}, false, err
	}
	mc, _ := strconv.ParseInt(m["max_clients"], 10, 64)
	return InstanceInfo{InstanceID: id, Name: m["name"], CacheMode: m["cache_mode"], MaxClients: mc,
		UpdatedAt: fromMS(m["updated_at"])}, true, nil
}

// refresh returns the instance's info, calling ShowInstance first when the
// cached entry is missing or older than RefreshEvery. It is best effort: on
// an error the old entry (possibly none) is returned with the error.
func (c *Instances) refresh(ctx context.Context, dcs DCS, id string, now time.Time) (InstanceInfo, error) {
	info, ok, err := c.Get(ctx, id)
	if err != nil || (ok && now.Sub(info.UpdatedAt) < c.RefreshEvery) {
		return info, err
	}
	in, err := dcs.ShowInstance(ctx, id)
	if err != nil {
		return info, err
	}
	k := c.key(id)
	if _, err := c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, k, "name", in.Name, "cache_mode", in.CacheMode, "max_clients", in.MaxClients, "updated_at", ms(now))
		p.PExpire(ctx, k, c.ttl)
		return nil
	}); err != nil {
		return info, err
	}
	return InstanceInfo{InstanceID: id, Name: in.Name, CacheMode: in.CacheMode, MaxClients: in.MaxClients, UpdatedAt: now}, nil
}

var _ interface {
	ShowInstance(context.Context, string) (*dcsapi.Instance, error)
} = (*dcsapi.Client)(nil)
