package httpx

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the zones below, on a host without a zoneinfo database
)

func TestFormatTime(t *testing.T) {
	oslo, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		t.Fatal(err)
	}
	copenhagen, err := time.LoadLocation("Europe/Copenhagen")
	if err != nil {
		t.Fatal(err)
	}
	winter := time.Date(2026, 11, 22, 9, 35, 0, 0, time.UTC)
	// 29 March 2026: clocks in Oslo and Copenhagen go from 02:00 CET to
	// 03:00 CEST at 01:00 UTC.
	beforeDST := time.Date(2026, 3, 29, 0, 59, 0, 0, time.UTC)
	afterDST := time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC)
	// 25 October 2026: back from 03:00 CEST to 02:00 CET at 01:00 UTC.
	beforeEnd := time.Date(2026, 10, 25, 0, 59, 0, 0, time.UTC)
	afterEnd := time.Date(2026, 10, 25, 1, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		lang string
		t    time.Time
		loc  *time.Location
		zone bool
		want string
	}{
		{"nb Oslo", "nb", winter, oslo, false, "22.11.2026 kl. 10:35"},
		{"da Copenhagen", "da", winter, copenhagen, false, "22.11.2026 kl. 10.35"},
		{"en Oslo", "en", winter, oslo, false, "22 Nov 2026, 10:35"},
		{"nb Oslo zoned", "nb", winter, oslo, true, "22.11.2026 kl. 10:35 CET"},
		{"da Copenhagen zoned", "da", winter, copenhagen, true, "22.11.2026 kl. 10.35 CET"},
		{"en Oslo zoned", "en", winter, oslo, true, "22 Nov 2026, 10:35 CET"},
		{"nb UTC zoned", "nb", winter, time.UTC, true, "22.11.2026 kl. 09:35 UTC"},
		{"nil is UTC", "en", winter, nil, true, "22 Nov 2026, 09:35 UTC"},
		{"unknown language as en", "sv", winter, oslo, false, "22 Nov 2026, 10:35"},
		{"before summer time", "nb", beforeDST, oslo, true, "29.03.2026 kl. 01:59 CET"},
		{"summer time begun", "nb", afterDST, oslo, true, "29.03.2026 kl. 03:00 CEST"},
		{"summer time begun da", "da", afterDST, copenhagen, true, "29.03.2026 kl. 03.00 CEST"},
		{"summer time begun en", "en", afterDST, oslo, false, "29 Mar 2026, 03:00"},
		{"before winter time", "nb", beforeEnd, oslo, true, "25.10.2026 kl. 02:59 CEST"},
		{"winter time begun", "nb", afterEnd, oslo, true, "25.10.2026 kl. 02:00 CET"},
		{"date changes with the zone", "en", time.Date(2026, 12, 31, 23, 30, 0, 0, time.UTC), oslo, false, "1 Jan 2027, 00:30"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FormatTime(tt.lang, tt.t, tt.loc, tt.zone); got != tt.want {
				t.Errorf("FormatTime(%q, %v, %v, %v) = %q, want %q", tt.lang, tt.t, tt.loc, tt.zone, got, tt.want)
			}
		})
	}
}

func TestPagesTime(t *testing.T) {
	oslo, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 7, 1, 8, 5, 0, 0, time.UTC)
	tests := []struct {
		name  string
		pages *Pages
		show  func(*Pages, string, time.Time) Time
		want  Time
	}{
		{"no zone set is UTC", &Pages{}, (*Pages).Time, Time{ISO: "2026-07-01T08:05:00Z", Text: "01.07.2026 kl. 08:05"}},
		{"zone set", &Pages{TimeZone: oslo}, (*Pages).Time, Time{ISO: "2026-07-01T08:05:00Z", Text: "01.07.2026 kl. 10:05"}},
		{"zoned", &Pages{TimeZone: oslo}, (*Pages).ZonedTime, Time{ISO: "2026-07-01T08:05:00Z", Text: "01.07.2026 kl. 10:05 CEST"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.show(tt.pages, "nb", at.In(oslo)); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestFormatDate(t *testing.T) {
	day := time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct{ lang, want string }{
		{"nb", "05.03.2026"},
		{"da", "05.03.2026"},
		{"en", "5 Mar 2026"},
		{"sv", "5 Mar 2026"},
	} {
		if got := FormatDate(tt.lang, day); got != tt.want {
			t.Errorf("FormatDate(%q) = %q, want %q", tt.lang, got, tt.want)
		}
	}
}

// TestGlossaryWritesTimesAsThePagesDo: the translators' glossary gives,
// for each language, a time and a date written as the pages write them,
// so that a text that names a time in words does not say it otherwise.
func TestGlossaryWritesTimesAsThePagesDo(t *testing.T) {
	glossary, err := os.ReadFile(filepath.Join("..", "..", "web", "locales", "GLOSSARY.md"))
	if err != nil {
		t.Fatal(err)
	}
	oslo, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 22, 9, 35, 0, 0, time.UTC)
	for _, lang := range []string{"nb", "da", "en"} {
		for _, want := range []string{
			lang + " `" + FormatTime(lang, at, oslo, false) + "`",
			lang + " `" + FormatTime(lang, at, oslo, true) + "`",
			lang + " `" + FormatDate(lang, at.In(oslo)) + "`",
		} {
			if !strings.Contains(string(glossary), want) {
				t.Errorf("the glossary does not say %s", want)
			}
		}
	}
}
