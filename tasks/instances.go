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

// refresh calls ShowInstance when the cached entry is missing or old. It is
// best effort: an error leaves the old entry.
func (c *Instances) refresh(ctx context.Context, dcs DCS, id string, now time.Time) error {
	if info, ok, err := c.Get(ctx, id); err != nil || (ok && now.Sub(info.UpdatedAt) < c.RefreshEvery) {
		return err
	}
	in, err := dcs.ShowInstance(ctx, id)
	if err != nil {
		return err
	}
	k := c.key(id)
	_, err = c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, k, "name", in.Name, "cache_mode", in.CacheMode, "max_clients", in.MaxClients, "updated_at", ms(now))
		p.PExpire(ctx, k, c.ttl)
		return nil
	})
	return err
}

var _ interface {
	ShowInstance(context.Context, string) (*dcsapi.Instance, error)
} = (*dcsapi.Client)(nil)
