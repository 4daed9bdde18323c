package config

import (
	"errors"
	"strings"
	"time"
	_ "time/tzdata" // every zone works on a host without a zoneinfo database
)

// DefaultTimeZone is the zone of pages.time_zone when none is set: the
// same on every node, whatever the host's TZ.
const DefaultTimeZone = "UTC"

// Pages configures how people-facing pages show what they show.
type Pages struct {
	// TimeZone is the IANA time zone people's pages show times in, e.g.
	// "Europe/Oslo" or "Europe/Copenhagen": the account page in it, the
	// status page in it with its abbreviation ("10:35 CET"). Default
	// UTC. The status API, the feed and the logs keep RFC 3339 in UTC.
	// Env VARDE_PAGES_TIME_ZONE.
	TimeZone string `yaml:"time_zone"`
}

// Location is the zone TimeZone names, UTC if it names none that this
// build knows (Validate refuses such a name).
func (p Pages) Location() *time.Location {
	loc, err := loadZone(p.TimeZone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// loadZone is the zone an IANA name names. "Local", which
// time.LoadLocation takes as the host's zone, and "", which it takes as
// UTC, are refused: a node's pages must not depend on its host's TZ.
func loadZone(name string) (*time.Location, error) {
	if name == "" || strings.EqualFold(name, "local") {
		return nil, errors.New("no zone named")
	}
	return time.LoadLocation(name)
}

func (p *Pages) validate(ps *problems) {
	if _, err := loadZone(p.TimeZone); err != nil {
		ps.add("pages.time_zone", "%q is not an IANA time zone such as Europe/Oslo or UTC", p.TimeZone)
	}
}
