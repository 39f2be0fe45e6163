package tts

import (
	"container/list"
	"sync"
)

// memCache is a least-recently-used map of rendered Audio bounded by total payload
// bytes, so hot prompts are served without touching the disk.
type memCache struct {
	mu    sync.Mutex
	max   int64
	size  int64
	order *list.List // front = most recently used; values are *memEntry
	items map[string]*list.Element
}

type memEntry struct {
	key   string
	audio *Audio
}

func newMemCache(maxBytes int64) *memCache {
	return &memCache{max: maxBytes, order: list.New(), items: make(map[string]*list.Element)}
}

func (c *memCache) get(key string) (*Audio, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[key]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*memEntry).audio, true
}

// add stores a under key, evicting the least recently used entries beyond the byte
// bound. An Audio larger than the whole bound is not kept.
func (c *memCache) add(key string, a *Audio) {
	n := int64(len(a.Payload))
	if n > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[key]; ok {
		c.order.MoveToFront(e)
		return
	}
	c.items[key] = c.order.PushFront(&memEntry{key: key, audio: a})
	c.size += n
	for c.size > c.max {
		e := c.order.Back()
		old := e.Value.(*memEntry)
		c.order.Remove(e)
		delete(c.items, old.key)
		c.size -= int64(len(old.audio.Payload))
	}
}

// len returns the number of cached entries and their payload bytes.
func (c *memCache) len() (entries int, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items), c.size
}
