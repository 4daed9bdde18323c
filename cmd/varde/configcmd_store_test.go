package main

import (
	"bytes"
	"net/url"
	"strings"
	"testing"

	"github.com/varde-eid/varde/internal/pgtest"
)

// TestConfigCheckStoreThatStopsANode: a DSN naming a database that does
// not exist, or a role the server does not know, stops a node at once
// (waiting would not mend it). Config check exits 1 saying that the
// store cannot be opened and that a node would stop the same way, with
// the server's reason, rather than that a salt could not be compared.
func TestConfigCheckStoreThatStopsANode(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	for _, tc := range []struct {
		name, says string
		mend       func(u *url.URL)
	}{
		{"no such database", `database "nodb" does not exist`, func(u *url.URL) { u.Path = "/nodb" }},
		{"no such role", `role "nobody" does not exist`, func(u *url.URL) { u.User = url.User("nobody") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(dsn)
			if err != nil {
				t.Fatal(err)
			}
			tc.mend(u)
			path := checkedConfig(t, t.TempDir())
			usePostgres(t, path, u.String())
			var stdout, stderr bytes.Buffer
			code := exitStatus(run([]string{"config", "check", "--config", path}, &stdout, &stderr), &stderr)
			for _, want := range []string{"cannot be opened, and a node started now would stop the same way", tc.says} {
				if code != 1 || !strings.Contains(stderr.String(), want) {
					t.Errorf("exit status %d, %q %q; want 1 and %q", code, stdout.String(), stderr.String(), want)
				}
			}
			if strings.Contains(stderr.String(), "subject salt") {
				t.Errorf("the refusal speaks of the subject salt: %q", stderr.String())
			}
		})
	}
}
