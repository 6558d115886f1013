package metrics

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// serveLimited serves an empty registry on 127.0.0.1 with limits and
// returns the address.
func serveLimited(t *testing.T, limits serverLimits) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serveListeners(ctx, []net.Listener{l}, "/metrics", "", NewHandler(prometheus.NewRegistry()), zerolog.Nop(), limits)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve after cancel: %v", err)
		}
	})
	return l.Addr().String()
}

// keepAlive opens a connection, scrapes once over it and leaves it open
// and idle, as a client that keeps its connections alive does.
func keepAlive(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: tpwatch\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("scrape over a kept-alive connection: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: status %d", resp.StatusCode)
	}
	return c
}

// closedByServer reports whether the server has closed c, waiting up to
// wait for it to.
func closedByServer(c net.Conn, wait time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(wait))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

func scrapeOnce(t *testing.T, addr string) time.Duration {
	t.Helper()
	start := time.Now()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: status %d", resp.StatusCode)
	}
	return time.Since(start)
}

// Issue 17, #11: 2,000 keep-alive connections held idle for 40 s were
// never closed. With the endpoint's own limits (64 connections), 200 idle
// ones are cut down to the limit as the later ones arrive, and a scrape
// still gets in at once.
func TestIdleConnectionsPastTheLimitAreClosed(t *testing.T) {
	addr := serveTest(t, prometheus.NewRegistry(), "")
	const n = 200
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = keepAlive(t, addr)
	}
	if took := scrapeOnce(t, addr); took > 2*time.Second {
		t.Errorf("a scrape past the limit took %v", took)
	}
	open := 0
	for _, c := range conns {
		if !closedByServer(c, 10*time.Millisecond) {
			open++
		}
	}
	if open > defaultLimits.maxConns {
		t.Errorf("%d of %d idle connections still open, want at most %d", open, n, defaultLimits.maxConns)
	}
	t.Logf("%d of %d idle keep-alive connections left open", open, n)
}

// Idle keep-alive connections are closed after the idle timeout.
func TestIdleConnectionsTimeOut(t *testing.T) {
	limits := defaultLimits
	limits.idle = 200 * time.Millisecond
	addr := serveLimited(t, limits)
	conns := make([]net.Conn, 50)
	for i := range conns {
		conns[i] = keepAlive(t, addr)
	}
	for i, c := range conns {
		if !closedByServer(c, 5*time.Second) {
			t.Fatalf("idle connection %d still open 5s after a %v idle timeout", i, limits.idle)
		}
	}
}

// Connections past the limit wait while the open ones are busy (here: sent
// nothing, and so are closed at the header timeout); the scrape behind them
// then gets in.
func TestConnectionsPastTheLimitWait(t *testing.T) {
	limits := defaultLimits
	limits.maxConns = 4
	limits.readHeader = 300 * time.Millisecond
	addr := serveLimited(t, limits)
	for range limits.maxConns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	took := scrapeOnce(t, addr)
	if took < limits.readHeader/2 || took > 5*time.Second {
		t.Errorf("the scrape past %d silent connections took %v, want about the header timeout %v", limits.maxConns, took, limits.readHeader)
	}
}

// A request whose headers pass the bound is refused.
func TestHugeHeadersRefused(t *testing.T) {
	addr := serveTest(t, prometheus.NewRegistry(), "")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: tpwatch\r\nX-Big: "+strings.Repeat("a", 64<<10)+"\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("64 KiB of headers: status %d, want 431", resp.StatusCode)
	}
}
