package metrics

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// connLimiter bounds the connections open on a server's listeners. At the
// bound, a listener first closes the connection that has been idle the
// longest (a keep-alive connection between two requests, which HTTP lets a
// server close at any time), so that a scrape is not locked out by
// connections opened and left idle; when none is idle the new connection
// waits, and the clients behind it in the kernel's backlog, for a busy one
// to end or time out. Its connState is the server's ConnState hook.
type connLimiter struct {
	max   int
	freed chan struct{} // a token when a connection closes

	mu   sync.Mutex
	open int
	idle map[net.Conn]time.Time // connections the server reports idle, since when
}

func newConnLimiter(max int) *connLimiter {
	return &connLimiter{max: max, freed: make(chan struct{}, 1), idle: map[net.Conn]time.Time{}}
}

// connState follows what the server does with each connection.
func (c *connLimiter) connState(conn net.Conn, state http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if state == http.StateIdle {
		c.idle[conn] = time.Now()
	} else {
		delete(c.idle, conn)
	}
}

// acquire takes a place for one more connection, closing the longest idle
// one when there is none free, and waiting when none is idle either. It
// reports false when done closes first.
func (c *connLimiter) acquire(done <-chan struct{}) bool {
	for {
		c.mu.Lock()
		if c.open < c.max {
			c.open++
			c.mu.Unlock()
			return true
		}
		var oldest net.Conn
		var since time.Time
		for conn, t := range c.idle {
			if oldest == nil || t.Before(since) {
				oldest, since = conn, t
			}
		}
		if oldest != nil {
			// Not idle any more as far as the limiter knows: the next
			// acquire waits for this one to close rather than close it
			// again.
			delete(c.idle, oldest)
		}
		c.mu.Unlock()
		if oldest != nil {
			oldest.Close()
		}
		select {
		case <-c.freed:
		case <-done:
			return false
		}
	}
}

// release gives back the place of a connection that closed.
func (c *connLimiter) release() {
	c.mu.Lock()
	c.open--
	c.mu.Unlock()
	select {
	case c.freed <- struct{}{}:
	default: // a token is already waiting
	}
}

// listener returns l with its connections counted against the limit.
func (c *connLimiter) listener(l net.Listener) net.Listener {
	return &limitedListener{Listener: l, lim: c, done: make(chan struct{})}
}

type limitedListener struct {
	net.Listener
	lim       *connLimiter
	done      chan struct{}
	closeOnce sync.Once
}

// Accept takes the place of a new connection once it has come, so that no
// idle one is closed before another client needs its place.
func (l *limitedListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if !l.lim.acquire(l.done) {
		conn.Close()
		return nil, net.ErrClosed
	}
	return &limitedConn{Conn: conn, lim: l.lim}, nil
}

func (l *limitedListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// limitedConn gives its place back when it is closed, once.
type limitedConn struct {
	net.Conn
	lim       *connLimiter
	closeOnce sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(c.lim.release)
	return err
}
