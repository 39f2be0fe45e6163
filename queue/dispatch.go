package queue

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// CDR is one entry of the CDR streams: the record as it was when an
// attempt ended.
type CDR struct {
	// StreamID orders CDRs across shards: "<stream entry id>/<shard>".
	StreamID string `json:"stream_id"`
	Record
}

// CDRs returns up to count CDRs, oldest first (by stream ID, then shard),
// starting after the CDR whose StreamID is after ("" for the beginning; a
// bare stream ID "ms-seq" starts at that ID in every shard).
func (c *Client) CDRs(ctx context.Context, after string, count int64) ([]CDR, error) {
	entries, err := c.readShards(ctx, cdrKey, after, count)
	if err != nil {
		return nil, err
	}
	out := make([]CDR, 0, len(entries))
	for _, e := range entries {
		f := make(map[string]string, len(e.Values))
		for k, v := range e.Values {
			f[k] = str(v)
		}
		r, err := recordFromFields(f)
		if err != nil {
			return nil, err
		}
		out = append(out, CDR{StreamID: e.ID, Record: *r})
	}
	return out, nil
}

// readShards reads up to count entries of the per-shard stream key(s),
// after the cursor after, merged in order of (stream ID, shard). Entry IDs
// in the result carry their shard ("id/shard").
func (c *Client) readShards(ctx context.Context, key func(int) string, after string, count int64) ([]redis.XMessage, error) {
	afterID, afterShard := "", -1
	if after != "" {
		afterID = after
		if i := strings.LastIndexByte(after, '/'); i >= 0 {
			afterID = after[:i]
			afterShard, _ = strconv.Atoi(after[i+1:])
		}
	}
	type entry struct {
		redis.XMessage
		shard int
	}
	var all []entry
	for s := range shards {
		start := "-"
		if afterID != "" {
			// Shards up to the cursor's were read up to and including its
			// ID; later shards not yet at that ID.
			start = afterID
			if s <= afterShard {
				start = "(" + afterID
			}
		}
		msgs, err := c.rdb.XRangeN(ctx, key(s), start, "+", count).Result()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", key(s), err)
		}
		for _, m := range msgs {
			all = append(all, entry{m, s})
		}
	}
	slices.SortFunc(all, func(a, b entry) int {
		if c := compareStreamIDs(a.ID, b.ID); c != 0 {
			return c
		}
		return a.shard - b.shard
	})
	if int64(len(all)) > count {
		all = all[:count]
	}
	out := make([]redis.XMessage, len(all))
	for i, e := range all {
		out[i] = redis.XMessage{ID: e.ID + "/" + strconv.Itoa(e.shard), Values: e.Values}
	}
	return out, nil
}

// compareStreamIDs orders Redis stream IDs "ms-seq".
func compareStreamIDs(a, b string) int {
	am, as := splitStreamID(a)
	bm, bs := splitStreamID(b)
	if am != bm {
		if am < bm {
			return -1
		}
		return 1
	}
	switch {
	case as < bs:
		return -1
	case as > bs:
		return 1
	}
	return 0
}

func splitStreamID(id string) (ms, seq uint64) {
	m, s, _ := strings.Cut(id, "-")
	ms, _ = strconv.ParseUint(m, 10, 64)
	seq, _ = strconv.ParseUint(s, 10, 64)
	return ms, seq
}
