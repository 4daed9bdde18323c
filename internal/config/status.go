package config

import "time"

// Status configures the public status page's incident rules (package
// status). Unset fields take their defaults.
type Status struct {
	// OpenAfter is how long a component must be degraded or down before
	// an incident opens automatically. Default 1m.
	OpenAfter time.Duration `yaml:"open_after"`
	// ResolveAfter is how long it must then be up again before the
	// incident resolves. Default 5m.
	ResolveAfter time.Duration `yaml:"resolve_after"`
	// NodeGoneAfter is how long another node may record nothing before
	// the status page counts it as gone (taken away without stopping
	// cleanly) rather than down. Default 24h.
	NodeGoneAfter time.Duration `yaml:"node_gone_after"`
}

func (s *Status) applyDefaults() {
	setDuration(&s.OpenAfter, time.Minute)
	setDuration(&s.ResolveAfter, 5*time.Minute)
	setDuration(&s.NodeGoneAfter, 24*time.Hour)
}

func (s *Status) validate(p *problems) {
	if s.OpenAfter <= 0 {
		p.add("status.open_after", "must be positive")
	}
	if s.ResolveAfter <= 0 {
		p.add("status.resolve_after", "must be positive")
	}
	if s.NodeGoneAfter < time.Hour {
		p.add("status.node_gone_after", "must be at least 1h: a node that crashed is down, and shown so, for at least that long")
	}
}
