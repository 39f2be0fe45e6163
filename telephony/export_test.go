package telephony

// DialogTags returns the tags of a call in progress (ours, the carrier's),
// for tests that send in-dialog requests of their own.
func (d *Dialer) DialogTags(callID string) (local, remote string) {
	d.mu.Lock()
	c := d.calls[callID]
	d.mu.Unlock()
	if c == nil {
		return "", ""
	}
	c.dialog.mu.Lock()
	defer c.dialog.mu.Unlock()
	return c.dialog.local, c.dialog.remote
}
