//go:build linux

package e2e

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// The test binary doubles as the lab's servers and clients: run in a
// namespace with helperEnv set, it does that job instead of testing.
const (
	helperEnv     = "TPWATCH_E2E_HELPER"
	helperArgsEnv = "TPWATCH_E2E_ARGS"
)

// runHelper runs the helper mode named by helperEnv and returns the exit
// status, or -1 when the process is a normal test run.
func runHelper() int {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		return -1
	}
	args := strings.Fields(os.Getenv(helperArgsEnv))
	switch mode {
	case "serve":
		return serveHelper(args)
	case "dial":
		return dialHelper(args)
	case "flood":
		return floodHelper(args)
	}
	fmt.Fprintf(os.Stderr, "unknown helper mode %q\n", mode)
	return 2
}

// serveHelper listens on every "proto:addr:port", prints "ready", and
// answers: a TCP server writes "ok" and closes, a UDP server echoes.
func serveHelper(specs []string) int {
	for _, s := range specs {
		proto, addr, _ := strings.Cut(s, ":")
		switch proto {
		case "tcp":
			ln, err := net.Listen("tcp4", addr)
			if err != nil {
				fmt.Println("error:", err)
				return 1
			}
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go func() {
						defer c.Close()
						c.SetDeadline(time.Now().Add(5 * time.Second))
						buf := make([]byte, 64)
						c.Read(buf)
						c.Write([]byte("ok"))
					}()
				}
			}()
		case "udp":
			pc, err := net.ListenPacket("udp4", addr)
			if err != nil {
				fmt.Println("error:", err)
				return 1
			}
			go func() {
				buf := make([]byte, 1500)
				for {
					n, from, err := pc.ReadFrom(buf)
					if err != nil {
						return
					}
					pc.WriteTo(buf[:n], from)
				}
			}()
		}
	}
	fmt.Println("ready")
	select {}
}

// dialHelper connects to every "proto:addr:port" in turn and prints one
// "spec=outcome" line each.
func dialHelper(specs []string) int {
	for _, s := range specs {
		proto, addr, _ := strings.Cut(s, ":")
		fmt.Printf("%s=%s\n", s, dialOnce(proto, addr))
	}
	return 0
}

func dialOnce(proto, addr string) string {
	c, err := net.DialTimeout(proto+"4", addr, 1500*time.Millisecond)
	if err != nil {
		return outcome(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(1500 * time.Millisecond))
	if _, err := c.Write([]byte("hello")); err != nil {
		return outcome(err)
	}
	buf := make([]byte, 64)
	if _, err := c.Read(buf); err != nil && !errors.Is(err, io.EOF) {
		return outcome(err)
	}
	return "ok"
}

func outcome(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.EACCES), errors.Is(err, syscall.ENETUNREACH):
		return "unreachable"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "error: " + err.Error()
}
