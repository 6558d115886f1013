package main

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDocumentedCommandsParse reads every tpwatch command line the READMEs
// show in their code blocks (README.md, deploy/windows/README.md, deploy/systemd/README.md) and
// checks that tpwatch knows the command and each of its flags: a renamed
// flag or command must not leave the documentation behind.
func TestDocumentedCommandsParse(t *testing.T) {
	docs := []string{"README.md", "deploy/windows/README.md", "deploy/systemd/README.md"}
	checked := 0
	for _, doc := range docs {
		f, err := os.Open(filepath.Join("..", "..", doc))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		line, fenced := "", false
		for sc.Scan() {
			raw := sc.Text()
			if strings.HasPrefix(raw, "```") {
				fenced = !fenced
				continue
			}
			// Code only: a fenced or an indented block (prose mentions
			// tpwatch at the start of a line too).
			if !fenced && !strings.HasPrefix(raw, "    ") && !strings.HasPrefix(raw, "\t") {
				continue
			}
			text := strings.TrimSpace(raw)
			if line != "" {
				// A PowerShell line continued with a backtick.
				line += " " + strings.TrimSuffix(text, "`")
			} else if strings.HasPrefix(text, "tpwatch ") || strings.HasPrefix(text, "sudo tpwatch ") {
				line = strings.TrimSuffix(strings.TrimPrefix(text, "sudo "), "`")
			} else {
				continue
			}
			if strings.HasSuffix(text, "`") {
				continue
			}
			checkDocumented(t, doc, line)
			checked++
			line = ""
		}
		f.Close()
	}
	if checked < 20 {
		t.Errorf("only %d documented command lines found: the reader is broken", checked)
	}
}

func checkDocumented(t *testing.T, doc, line string) {
	t.Helper()
	args := shellWords(line)
	if len(args) < 2 || args[0] != "tpwatch" {
		return
	}
	root := (&app{}).rootCommand()
	cmd, rest, err := root.Find(args[1:])
	if err != nil {
		t.Errorf("%s: %q: %v", doc, line, err)
		return
	}
	if cmd.DisableFlagParsing {
		// service install: its flags are run's.
		if _, _, err := serviceRunArgs(rest); err != nil && !strings.Contains(err.Error(), "needs --interface") {
			t.Errorf("%s: %q: %v", doc, line, err)
		}
		return
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Errorf("%s: %q: %v", doc, line, err)
	}
}

// shellWords splits a documented command line as a shell would, well
// enough for the READMEs: quotes group, a # starts a comment, a pipe or a
// redirection ends the command.
func shellWords(s string) []string {
	var words []string
	var w strings.Builder
	in := rune(0)
	flush := func() {
		if w.Len() > 0 {
			words = append(words, w.String())
			w.Reset()
		}
	}
	for _, c := range s {
		switch {
		case in != 0 && c == in:
			in = 0
		case in != 0:
			w.WriteRune(c)
		case c == '"' || c == '\'':
			in = c
		case c == '#' && w.Len() == 0, c == '|', c == '>', c == '&', c == ';':
			flush()
			return words
		case c == ' ' || c == '\t':
			flush()
		default:
			w.WriteRune(c)
		}
	}
	flush()
	return words
}

// The example config shipped in the release archives is valid.
func TestExampleSiteConfig(t *testing.T) {
	out, stderr, status := tpwatch(t, "policy", "check", "--config", filepath.Join("..", "..", "deploy", "site.example.yaml"))
	if status != 0 || !strings.Contains(out, "OK") {
		t.Errorf("deploy/site.example.yaml: %d %q %q", status, out, stderr)
	}
}
