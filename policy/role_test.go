package policy

import (
	"slices"
	"testing"
)

func TestParseRole(t *testing.T) {
	names := RoleNames()
	if len(names) != int(numRoles)-1 {
		t.Fatalf("RoleNames() has %d names, want %d", len(names), numRoles-1)
	}
	for i, name := range names {
		r, ok := ParseRole(name)
		if !ok || r != Role(i+1) || r.String() != name {
			t.Errorf("ParseRole(%q) = %v, %v; want %v", name, r, ok, Role(i+1))
		}
	}
	for _, bad := range []string{"", "any", "Agent", "invalid", "agent "} {
		if r, ok := ParseRole(bad); ok {
			t.Errorf("ParseRole(%q) = %v, want not ok", bad, r)
		}
	}
}

func TestRoleSet(t *testing.T) {
	s := RoleSet(0).With(SIEM).With(Agent).With(EnterpriseManager)
	if got, want := s.Roles(), []Role{EnterpriseManager, Agent, SIEM}; !slices.Equal(got, want) {
		t.Errorf("Roles() = %v, want %v", got, want)
	}
	if got, want := s.String(), "enterprise-manager,agent,siem"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := RoleSet(0).String(); got != "" {
		t.Errorf("empty String() = %q", got)
	}
	if got := RoleSet(0).Roles(); len(got) != 0 {
		t.Errorf("empty Roles() = %v", got)
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"agent", "agent", 0},
		{"agnet", "agent", 1},
		{"sqlserver", "sql-server", 1},
		{"", "abc", 3},
		{"kitten", "sitting", 3},
	}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
