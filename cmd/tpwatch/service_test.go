package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestServiceOutsideWindowsPointsToSystemd(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows has services")
	}
	for _, args := range [][]string{
		{"service", "status"}, {"service", "start"}, {"service", "stop"}, {"service", "reload"},
		{"service", "uninstall"}, {"service", "install", "--interface", "eth0"},
	} {
		_, stderr, status := tpwatch(t, args...)
		if status != exitError || !strings.Contains(stderr, "deploy/systemd") || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: status %d, stderr %q; want 2 and one line pointing to deploy/systemd", args, status, stderr)
		}
	}
	out, _, status := tpwatch(t, "service", "install", "--help")
	if status != 0 || !strings.Contains(out, "--interface is required") {
		t.Errorf("service install --help: %d %q", status, out)
	}
}

// serviceRunArgs checks the run flags with the run command itself and
// makes what the service will need of them.
func TestServiceRunArgs(t *testing.T) {
	data := t.TempDir()
	t.Setenv("ProgramData", data)
	wd := t.TempDir()
	t.Chdir(wd)

	args, notes, err := serviceRunArgs([]string{"--interface", "Ethernet0", "-i", "Ethernet 2", "--promiscuous", "--config", "site.yaml", "--log.level", "debug"})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(args, "|")
	for _, want := range []string{
		"run|",
		"--interface|Ethernet0|--interface|Ethernet 2",
		"--promiscuous=true",
		"--config|" + filepath.Join(wd, "site.yaml"),
		"--log.file|" + filepath.Join(data, "tpwatch", "tpwatch.log"),
		"--log.level|debug",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("service arguments %q lack %q", got, want)
		}
	}
	if len(notes) != 0 {
		t.Errorf("notes %q for a complete set of flags", notes)
	}

	// Without --config: the site.yaml under %ProgramData%\tpwatch when
	// there is one, else a note that the inventory will be inferred.
	args, notes, err = serviceRunArgs([]string{"--interface", "Ethernet0"})
	if err != nil || strings.Contains(strings.Join(args, " "), "--config") || len(notes) != 1 || !strings.Contains(notes[0], "infer") {
		t.Errorf("no config anywhere: %q, %q, %v", args, notes, err)
	}
	if err := os.MkdirAll(filepath.Join(data, "tpwatch"), 0o755); err != nil {
		t.Fatal(err)
	}
	site := filepath.Join(data, "tpwatch", "site.yaml")
	if err := os.WriteFile(site, []byte("roles: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args, notes, err = serviceRunArgs([]string{"--interface", "Ethernet0"})
	if err != nil || !strings.Contains(strings.Join(args, "|"), "--config|"+site) || len(notes) != 0 {
		t.Errorf("site.yaml in the data directory: %q, %q, %v", args, notes, err)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{}, "needs --interface"},
		{[]string{"--interface", "Ethernet0", "--nope"}, "unknown flag: --nope"},
		{[]string{"--interface", "Ethernet0", "extra"}, `unexpected argument "extra"`},
		{[]string{"--interface", "Ethernet0", "--user", "nobody"}, "--user is for Linux"},
	} {
		if _, _, err := serviceRunArgs(c.args); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("serviceRunArgs(%q): %v, want %q", c.args, err, c.want)
		}
	}
}
