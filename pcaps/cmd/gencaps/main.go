// Command gencaps writes tpwatch's test captures, their configs and their
// expected verdicts (go run ./pcaps/cmd/gencaps -out pcaps/), or a large
// synthetic capture for benchmarks (-bench FILE -packets N -flows M -live L).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"

	"github.com/tpwatch/tpwatch/pcaps"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "gencaps:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("gencaps", flag.ContinueOnError)
	out := fs.String("out", "", "directory to write the committed test captures into")
	bench := fs.String("bench", "", "write a benchmark capture (classic pcap) to this file")
	benchConfig := fs.String("bench-config", "", "with -bench: write the site config of the benchmark capture to this file")
	d := pcaps.DefaultBench
	packets := fs.Int("packets", d.Packets, "with -bench: number of packets")
	flows := fs.Int("flows", d.Flows, "with -bench: about how many flows in all (a flow is packets/flows packets on average)")
	live := fs.Int("live", d.Live, "with -bench: number of flows open at once, their packets interleaved")
	seed := fs.Int64("seed", d.Seed, "with -bench: random seed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 || (*out == "") == (*bench == "") {
		return fmt.Errorf("usage: gencaps -out DIR | -bench FILE [-bench-config FILE] [-packets N] [-flows N] [-live N] [-seed N]")
	}
	if *out != "" {
		return pcaps.WriteAll(*out)
	}
	if err := writeBench(*bench, pcaps.BenchSpec{Packets: *packets, Flows: *flows, Live: *live, Seed: *seed}); err != nil {
		return err
	}
	if *benchConfig != "" {
		if err := os.WriteFile(*benchConfig, pcaps.BenchConfig(), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", *benchConfig, err)
		}
	}
	return nil
}

func writeBench(path string, spec pcaps.BenchSpec) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := pcaps.WriteBench(w, spec); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	return nil
}
