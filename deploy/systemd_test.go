package deploy

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/varde-eid/varde/internal/config"
)

const (
	unitPath     = "systemd/varde.service"
	sysusersPath = "systemd/varde-sysusers.conf"
	tmpfilesPath = "systemd/varde-tmpfiles.conf"
	nodeConfig   = "systemd/varde.yaml"
	// credentialsDir is $CREDENTIALS_DIRECTORY, %d, of a unit named
	// varde.service.
	credentialsDir = "/run/credentials/varde.service"
	// maxExposure is the highest overall exposure systemd-analyze
	// security may rate the unit (0 is best, 10 worst; up to 2 is "OK").
	// systemd 252 rates it 1.1: what is left is its own network, which a
	// node needs to answer the proxy and reach PostgreSQL and the eIDs,
	// and the host's root directory.
	maxExposure = 1.5
)

// unitCopy writes the unit to a directory of its own, named as it is
// installed, with ExecStart's program replaced by the varde the tests
// built (systemd-analyze verify checks that it exists).
func unitCopy(t *testing.T) string {
	t.Helper()
	u := readUnit(t, unitPath)
	prog, _ := u.execStart(t)
	s := render(t, unitPath, readFile(t, unitPath), "ExecStart="+prog+" ", "ExecStart="+vardeBin+" ")
	path := filepath.Join(t.TempDir(), "varde.service")
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestUnitVerifies: systemd-analyze verify finds nothing to say about
// the unit, not even a warning (which it gives with exit status 0).
func TestUnitVerifies(t *testing.T) {
	analyze := lookPath(t, "systemd-analyze", "scripts/ensure-systemd-analyze.sh")
	out, err := exec.Command(analyze, "verify", "--man=no", unitCopy(t)).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestUnitExposure: systemd-analyze security rates the unit at most
// maxExposure.
func TestUnitExposure(t *testing.T) {
	analyze := lookPath(t, "systemd-analyze", "scripts/ensure-systemd-analyze.sh")
	out, err := exec.Command(analyze, "security", "--offline=true", "--no-pager", unitCopy(t)).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for varde\.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security gave no overall exposure:\n%s", out)
	}
	score, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("overall exposure %.1f (at most %.1f)", score, maxExposure)
	if score > maxExposure {
		t.Errorf("overall exposure %.1f, want at most %.1f:\n%s", score, maxExposure, out)
	}
}

// TestUnitHardening: the settings the unit's hardening rests on stay
// as they are, whatever systemd-analyze's weights.
func TestUnitHardening(t *testing.T) {
	u := readUnit(t, unitPath)
	want := map[string]string{
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"PrivateDevices": "yes", "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
		"ProtectKernelLogs": "yes", "ProtectControlGroups": "yes", "RestrictNamespaces": "yes",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "SystemCallArchitectures": "native",
		"MemoryDenyWriteExecute": "yes", "CapabilityBoundingSet": "", "AmbientCapabilities": "",
		"LockPersonality": "yes", "UMask": "0077", "KillSignal": "SIGTERM", "Restart": "on-failure",
	}
	for k, v := range want {
		if got := u.one(t, "Service", k); got != v {
			t.Errorf("%s=%s, want %s", k, got, v)
		}
	}
	if got := u["Service"]["SystemCallFilter"]; !slices.Contains(got, "@system-service") {
		t.Errorf("SystemCallFilter=%q, want @system-service among them", got)
	}
}

// TestUnitFlagsAcceptedByServe: the unit runs varde serve with flags
// that varde serve has: asked for its usage after them (-h), it gives
// it, where an unknown flag or argument would end it with status 2.
func TestUnitFlagsAcceptedByServe(t *testing.T) {
	u := readUnit(t, unitPath)
	prog, args := u.execStart(t)
	if filepath.Base(prog) != "varde" || len(args) == 0 || args[0] != "serve" {
		t.Fatalf("ExecStart=%s: want varde serve", u.one(t, "Service", "ExecStart"))
	}
	cmd := exec.Command(vardeBin, append(slices.Clone(args), "-h")...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("varde %s -h: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "-config") {
		t.Errorf("varde %s -h printed no usage of serve:\n%s", strings.Join(args, " "), stdout.String())
	}
}

// TestUnitMatchesConfig: the unit, its user and directories, the
// example configuration and the proxy name the same things: the
// configuration file is where ExecStart reads it, in the directory
// tmpfiles makes for the node's group; the store is in the unit's
// StateDirectory; the credentials are the key files the configuration
// names, and the node is pointed at them by overrides it has; it listens
// on a loopback port above 1023, the one the proxy forwards to.
func TestUnitMatchesConfig(t *testing.T) {
	u := readUnit(t, unitPath)
	_, args := u.execStart(t)
	cfgPath := flagValue(t, args, "config")

	user := u.one(t, "Service", "User")
	if g := u.one(t, "Service", "Group"); g != user {
		t.Errorf("Group=%s, want the user's own group %s", g, user)
	}
	if !regexp.MustCompile(`(?m)^u ` + regexp.QuoteMeta(user) + ` `).MatchString(readFile(t, sysusersPath)) {
		t.Errorf("%s does not create the user %s", sysusersPath, user)
	}
	cfgDir := filepath.Dir(cfgPath)
	if !strings.Contains(readFile(t, tmpfilesPath), "d "+cfgDir+" 0750 root "+user+" -") {
		t.Errorf("%s does not make %s, root's and readable by the group %s", tmpfilesPath, cfgDir, user)
	}

	// The node's settings as the unit gives them: the file and the
	// unit's environment.
	env := map[string]string{}
	for _, kv := range u.env(t, credentialsDir) {
		k, v, _ := strings.Cut(kv, "=")
		if !slices.Contains(config.EnvNames(), k) {
			t.Errorf("Environment=%s: %s is no setting varde serve reads", kv, k)
		}
		env[k] = v
	}
	asRun, err := config.Load(nodeConfig, func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("%s with the unit's environment: %v", nodeConfig, err)
	}
	asFile, err := config.Load(nodeConfig, nil)
	if err != nil {
		t.Fatalf("%s: %v", nodeConfig, err)
	}

	state := "/var/lib/" + u.one(t, "Service", "StateDirectory")
	if asRun.Store.Driver != "sqlite" || filepath.Dir(asRun.Store.DSN) != state {
		t.Errorf("store %s %s, want an SQLite file in the StateDirectory %s", asRun.Store.Driver, asRun.Store.DSN, state)
	}
	if wd := u.one(t, "Service", "WorkingDirectory"); wd != state {
		t.Errorf("WorkingDirectory=%s, want the StateDirectory %s", wd, state)
	}

	// Each credential is a key file the configuration names, handed
	// to the node under the credentials directory.
	creds := map[string]string{}
	for _, lc := range u["Service"]["LoadCredential"] {
		id, src, _ := strings.Cut(lc, ":")
		creds[src] = filepath.Join(credentialsDir, id)
	}
	files := []struct{ setting, file, run string }{
		{"keys.signing_key_file", asFile.Keys.SigningKeyFile, asRun.Keys.SigningKeyFile},
		{"keys.rsa_signing_key_file", asFile.Keys.RSASigningKeyFile, asRun.Keys.RSASigningKeyFile},
		{"keys.subject_salt_file", asFile.Keys.SubjectSaltFile, asRun.Keys.SubjectSaltFile},
	}
	for _, f := range files {
		if filepath.Dir(f.file) != cfgDir {
			t.Errorf("%s %s: want it in %s", f.setting, f.file, cfgDir)
		}
		if creds[f.file] == "" || creds[f.file] != f.run {
			t.Errorf("%s: the node reads %s; want the credential LoadCredential= makes of %s", f.setting, f.run, f.file)
		}
	}
	for _, c := range asRun.Clients {
		if c.SecretFile != "" && !strings.HasPrefix(c.SecretFile, cfgDir+"/") {
			t.Errorf("client %s: secret_file %s, want it under %s", c.ID, c.SecretFile, cfgDir)
		}
	}

	host, port, err := net.SplitHostPort(asRun.Listen)
	if err != nil {
		t.Fatal(err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		t.Errorf("listen %s: want a loopback address, for the proxy on the host alone", asRun.Listen)
	}
	if n, _ := strconv.Atoi(port); n < 1024 {
		t.Errorf("listen %s: a port below 1024 needs a capability the unit does not grant", asRun.Listen)
	}
	if !strings.Contains(readFile(t, proxyPath), "server "+asRun.Listen+" ") {
		t.Errorf("%s does not forward to the node's listen address %s", proxyPath, asRun.Listen)
	}
}

// TestSysusersAndTmpfiles: systemd-sysusers makes the node's user from
// the snippet, and systemd-tmpfiles its configuration directory, root's
// and its group's, in a root of their own.
func TestSysusersAndTmpfiles(t *testing.T) {
	sysusers := lookPath(t, "systemd-sysusers", "scripts/ensure-systemd-analyze.sh")
	tmpfiles := lookPath(t, "systemd-tmpfiles", "scripts/ensure-systemd-analyze.sh")
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	if out, err := exec.Command(sysusers, "--root="+root, abs(sysusersPath)).CombinedOutput(); err != nil {
		t.Fatalf("systemd-sysusers: %v\n%s", err, out)
	}
	passwd := readFile(t, filepath.Join(root, "etc/passwd"))
	m := regexp.MustCompile(`(?m)^varde:x:(\d+):(\d+):[^:]*:/var/lib/varde:/usr/sbin/nologin$`).FindStringSubmatch(passwd)
	if m == nil {
		t.Fatalf("no user varde at home in /var/lib/varde without a shell:\n%s", passwd)
	}
	out, err := exec.Command(tmpfiles, "--root="+root, "--create", abs(tmpfilesPath)).CombinedOutput()
	if os.Geteuid() != 0 {
		// Only root may give the directories away; all else must work.
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if !strings.Contains(line, "fchownat()") || !strings.Contains(line, "Operation not permitted") {
				t.Fatalf("systemd-tmpfiles: %v\n%s", err, out)
			}
		}
	} else if err != nil {
		t.Fatalf("systemd-tmpfiles: %v\n%s", err, out)
	}
	for _, dir := range []string{"etc/varde", "etc/varde/clients"} {
		fi, err := os.Stat(filepath.Join(root, dir))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o750 {
			t.Errorf("/%s has mode %04o, want 0750", dir, fi.Mode().Perm())
		}
		if st := fi.Sys().(*syscall.Stat_t); os.Geteuid() == 0 && (st.Uid != 0 || strconv.Itoa(int(st.Gid)) != m[2]) {
			t.Errorf("/%s is owned by %d:%d, want root and the group varde (%s)", dir, st.Uid, st.Gid, m[2])
		}
	}
}
