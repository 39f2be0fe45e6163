package queue

import (
	"hash/fnv"
	"strconv"
)

// The Redis key layout of messages. Only this file knows it.
//
// Every state change of a message (state.lua) writes, in one atomic step,
// the message's own keys and one entry of each of several aggregate streams
// (the outbox, the CDRs) plus the in-flight and not-yet-enqueued indexes.
// Redis Cluster runs a script only when all its keys hash to one slot, so
// every key of a message carries the hash tag of the message's shard, and
// every aggregate key exists once per shard, under the same tag:
//
//	vms:{<tag>}:msg:<id>            record hash
//	vms:{<tag>}:msg:<id>:events     the message's event stream
//	vms:{<tag>}:msg:<id>:attempts   every INVITE placed for it (list)
//	vms:{<tag>}:outbox              every event of every message of the shard
//	vms:{<tag>}:cdr                 one entry per finished attempt
//	vms:{<tag>}:inflight            messages a worker holds in a call (zset)
//	vms:{<tag>}:unqueued            records whose task is not yet known enqueued (zset)
//	vms:worker:{<worker id>}        a worker's heartbeat (expires when it stops beating)
//
// A per-message tag of its own ("{<id>}") cannot work: the outbox entry of
// the change must sit in the same slot as the record. The shard of a
// message is a hash of its ID, so its keys are found from the ID alone.
// Consumers read every shard and merge by stream ID.
const (
	keyPrefix = "vms:"
	// shards is how many outbox/CDR streams (and hash tags) there are. It
	// may never change for a deployment's data: a message's keys are found
	// through it.
	shards = 16
	// streamMaxLen bounds each shard's outbox and CDR stream (approximate
	// trimming); the relay and billing exports read them long before that.
	streamMaxLen = 2_000_000
	// eventsMaxLen bounds one message's event stream.
	eventsMaxLen = 100
)

// shardTags are the hash tags of the shards, chosen at start-up so that
// their slots are spread evenly over the 16384 slots of a cluster: a
// cluster of N masters with equal slot ranges gets an equal share.
var shardTags = func() [shards]string {
	var tags [shards]string
	for s := range shards {
		lo, hi := s*16384/shards, (s+1)*16384/shards
		for j := 0; ; j++ {
			t := "m" + strconv.Itoa(j)
			if sl := int(crc16(t) % 16384); sl >= lo && sl < hi {
				tags[s] = t
				break
			}
		}
	}
	return tags
}()

func shardOf(id string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return int(h.Sum32() % shards)
}

func shardPrefix(s int) string { return keyPrefix + "{" + shardTags[s] + "}:" }

func recordKey(id string) string   { return shardPrefix(shardOf(id)) + "msg:" + id }
func eventsKey(id string) string   { return recordKey(id) + ":events" }
func attemptsKey(id string) string { return recordKey(id) + ":attempts" }
func outboxKey(s int) string       { return shardPrefix(s) + "outbox" }
func cdrKey(s int) string          { return shardPrefix(s) + "cdr" }
func inflightKey(s int) string     { return shardPrefix(s) + "inflight" }
func unqueuedKey(s int) string     { return shardPrefix(s) + "unqueued" }

// WorkerKey is the heartbeat key of a worker process.
func workerKey(worker string) string { return keyPrefix + "worker:{" + worker + "}" }

// messageKeys are the KEYS of every state.lua call for message id, in the
// order the script names them.
func messageKeys(id string) []string {
	s := shardOf(id)
	return []string{recordKey(id), eventsKey(id), attemptsKey(id), outboxKey(s), cdrKey(s),
		inflightKey(s), unqueuedKey(s)}
}

// crc16 is the CRC-16/XMODEM Redis Cluster hashes keys with.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
