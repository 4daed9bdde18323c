package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/pgtest"
)

// TestServeSameNodeNameTwice: two `varde serve` processes over one
// PostgreSQL database given one node name and a signing key each (a
// configuration copied without changing node). The one that started
// first sees the other's key published under its name and logs, once,
// that another process runs as it, naming both keys and what to mend.
func TestServeSameNodeNameTwice(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	dir := t.TempDir()
	salt := filepath.Join(dir, "salt")
	if err := os.WriteFile(salt, []byte(strings.Repeat("s", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, issuer := freeAddr(t)
	kids := map[string]string{}
	config := func(name string) string {
		keyFile := filepath.Join(dir, name+".pem")
		signer, err := loadOrCreateSigner(keyFile)
		if err != nil {
			t.Fatal(err)
		}
		kids[name] = signer.KID()
		addr, _ := freeAddr(t)
		path := filepath.Join(dir, name+".yaml")
		body := fmt.Sprintf("version: 1\nissuer: %s\nlisten: %s\nnode: n1\nstore: {driver: postgres, dsn: %q}\n"+
			"keys: {signing_key_file: %s, subject_salt_file: %s}\nhealth: {interval: 1s}\nlog: {level: info}\n",
			issuer, addr, dsn, keyFile, salt)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	first := startServeProcess(t, config("first"))
	waitFor(t, "the first process to serve", 30*time.Second, func() bool { return strings.Contains(first.logs.String(), "varde serving") })
	second := startServeProcess(t, config("second"))
	waitFor(t, "the second process to serve", 30*time.Second, func() bool { return strings.Contains(second.logs.String(), "varde serving") })
	const says = `another process runs as node \"n1\"`
	waitFor(t, "the first process to say another runs as n1", 30*time.Second, func() bool { return strings.Contains(first.logs.String(), says) })
	time.Sleep(3 * time.Second) // a few more of its own probes
	logs := first.logs.String()
	line := logs[strings.Index(logs, says):]
	line = line[:strings.IndexByte(line, '\n')]
	for _, want := range []string{`"level":"ERROR"`, "give each node its own name (node)", `"kid":"` + kids["first"], `"other_kid":"` + kids["second"]} {
		if !strings.Contains(logs, want) {
			t.Errorf("the first process's log lacks %q:\n%s", want, line)
		}
	}
	if n := strings.Count(logs, says); n != 1 {
		t.Errorf("the first process said %d times that another runs as n1, want once", n)
	}
	if strings.Contains(second.logs.String(), says) {
		t.Errorf("the second process says another runs as n1; only the first can tell:\n%s", second.logs.String())
	}
}
