package config

// Audio configures recorded prompts, audio fetching and text normalization.
type Audio struct{}

func (c *Config) validateAudio(p *problems) {}
