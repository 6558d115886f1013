package metrics

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"
)

// testPKI is a CA and a server certificate for 127.0.0.1 it signed, as PEM
// files in dir.
type testPKI struct {
	pool              *x509.CertPool
	certFile, keyFile string
}

func newTestPKI(t *testing.T, dir string) testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "tpwatch test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p := testPKI{
		pool:     x509.NewCertPool(),
		certFile: filepath.Join(dir, "server.crt"),
		keyFile:  filepath.Join(dir, "server.key"),
	}
	p.pool.AddCert(caCert)
	writePEM(t, p.certFile, "CERTIFICATE", der)
	writePEM(t, p.keyFile, "EC PRIVATE KEY", keyDER)
	return p
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// serveTest serves reg's metrics on a port of 127.0.0.1 and returns its
// base URL; the server stops, and must stop cleanly, when the test ends.
func serveTest(t *testing.T, reg *prometheus.Registry, webConfig string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- ServeListeners(ctx, []net.Listener{l}, "/metrics", webConfig, NewHandler(reg), zerolog.Nop())
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeListeners after cancel: %v", err)
		}
	})
	return l.Addr().String()
}

func TestServeTLSAndBasicAuth(t *testing.T) {
	dir := t.TempDir()
	pki := newTestPKI(t, dir)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webConfig := filepath.Join(dir, "web.yml")
	conf := "tls_server_config:\n" +
		"  cert_file: " + pki.certFile + "\n" +
		"  key_file: " + pki.keyFile + "\n" +
		"basic_auth_users:\n" +
		"  prometheus: " + string(hash) + "\n"
	if err := os.WriteFile(webConfig, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewBuildInfoCollector("1.2.3", "abc123"))
	addr := serveTest(t, reg, webConfig)

	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.pool}},
	}
	get := func(path, user, password string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, "https://"+addr+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if user != "" {
			req.SetBasicAuth(user, password)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(body)
	}

	if code, _ := get("/metrics", "", ""); code != http.StatusUnauthorized {
		t.Errorf("without credentials: status %d, want 401", code)
	}
	if code, _ := get("/metrics", "prometheus", "wrong"); code != http.StatusUnauthorized {
		t.Errorf("with a wrong password: status %d, want 401", code)
	}
	code, body := get("/metrics", "prometheus", "s3cret")
	if code != http.StatusOK || !strings.Contains(body, `tpwatch_build_info{goversion=`) {
		t.Errorf("with credentials: status %d, body:\n%s\nwant 200 and tpwatch_build_info", code, body)
	}
	code, body = get("/", "prometheus", "s3cret")
	if code != http.StatusOK || !strings.Contains(body, `href="/metrics"`) {
		t.Errorf("landing page: status %d, body:\n%s\nwant 200 and a link to metrics", code, body)
	}
	if code, _ := get("/nothing-here", "prometheus", "s3cret"); code != http.StatusNotFound {
		t.Errorf("unknown path: status %d, want 404", code)
	}

	// The certificate is really checked: a client that does not trust the
	// test CA must refuse the server.
	untrusting := &http.Client{Timeout: 10 * time.Second}
	_, err = untrusting.Get("https://" + addr + "/metrics")
	var unknownAuthority x509.UnknownAuthorityError
	if !errors.As(err, &unknownAuthority) {
		t.Errorf("client without the test CA: error %v, want x509.UnknownAuthorityError", err)
	}
}

func TestServePlainHTTP(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewBuildInfoCollector("1.2.3", "abc123"))
	addr := serveTest(t, reg, "")
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "tpwatch_build_info") {
		t.Errorf("status %d, body:\n%s", resp.StatusCode, body)
	}
}

func TestServeRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	badConfig := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(badConfig, []byte("tls_server_config:\n  cert_file: /nonexistent.crt\n  key_file: /nonexistent.key\nunknown_key: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := NewHandler(prometheus.NewRegistry())
	ctx := context.Background()
	for name, call := range map[string]func() error{
		"no address":     func() error { return Serve(ctx, nil, "/metrics", "", h, zerolog.Nop()) },
		"bad address":    func() error { return Serve(ctx, []string{"127.0.0.1:notaport"}, "/metrics", "", h, zerolog.Nop()) },
		"bad path":       func() error { return Serve(ctx, []string{"127.0.0.1:0"}, "metrics", "", h, zerolog.Nop()) },
		"bad web config": func() error { return Serve(ctx, []string{"127.0.0.1:0"}, "/metrics", badConfig, h, zerolog.Nop()) },
		"missing config": func() error {
			return Serve(ctx, []string{"127.0.0.1:0"}, "/metrics", filepath.Join(dir, "none.yml"), h, zerolog.Nop())
		},
	} {
		if err := call(); err == nil {
			t.Errorf("%s: Serve returned nil, want an error", name)
		}
	}
}

func TestServeStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, []string{"127.0.0.1:0", "127.0.0.1:0"}, "/metrics", "", NewHandler(prometheus.NewRegistry()), zerolog.Nop())
	}()
	time.Sleep(50 * time.Millisecond) // most likely serving by now
	cancel()
	select {
	case err := <-done:
		// A cancel that came before listening may abort the listen.
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Serve after cancel: %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context was cancelled")
	}
}

// Routes are served beside the metrics, a route for the root replaces
// the landing page, and a route that clashes is an error at start.
func TestServeRoutes(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	text := func(s string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, s) })
	}
	go func() {
		done <- ServeListeners(ctx, []net.Listener{l}, "/metrics", "", NewHandler(reg), zerolog.Nop(),
			Route{Pattern: "GET /{$}", Handler: text("status page")}, Route{Pattern: "GET /api/v1/flows", Handler: text("flows")})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeListeners: %v", err)
		}
	}()
	for path, want := range map[string]string{"/": "status page", "/api/v1/flows": "flows", "/nothing-here": "404 page not found\n"} {
		resp, err := http.Get("http://" + l.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != want {
			t.Errorf("GET %s: %q, want %q", path, body, want)
		}
	}
	l2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	err = ServeListeners(context.Background(), []net.Listener{l2}, "/metrics", "", NewHandler(reg), zerolog.Nop(),
		Route{Pattern: "/metrics", Handler: text("clash")})
	if err == nil || !strings.Contains(err.Error(), "/metrics") {
		t.Errorf("a route on the metrics path: %v, want an error naming it", err)
	}
	l2.Close()
}
