package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tpwatch/tpwatch/capture/live"
)

func (a *app) interfacesCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "interfaces",
		Short: "List the interfaces tpwatch run can capture on",
		Long: `List the network interfaces live capture can use, with every name
--interface accepts: on Windows the friendly name (Ethernet0), the Npcap
device (\Device\NPF_{GUID}), the bare GUID and the interface index; on
Linux the interface name and index. Names are matched ignoring case.

Listing needs the capture library: libpcap on Linux, Npcap on Windows
(install it from https://npcap.com first). With Npcap restricted to
administrators, run it from an elevated prompt.`,
		Example: `  tpwatch interfaces
  tpwatch interfaces --format json
  tpwatch run --interface Ethernet0 --config site.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "table" && format != "json" {
				return &exitStatus{code: exitError, err: fmt.Errorf("--format %q: want table or json", format)}
			}
			list, err := live.Interfaces()
			if err != nil {
				return &exitStatus{code: exitError, err: err}
			}
			if len(list) == 0 {
				// Npcap restricted to administrators shows a plain user an
				// empty list rather than an error.
				return &exitStatus{code: exitError, err: errors.New("no interface to capture on: capturing may need administrator rights (an elevated prompt) or root, or the capture driver is not running (sc query npcap)")}
			}
			if format == "json" {
				err = writeInterfacesJSON(a.stdout, list)
			} else {
				err = writeInterfacesTable(a.stdout, list)
			}
			if err != nil {
				return &exitStatus{code: exitError, err: fmt.Errorf("write interfaces: %w", err)}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json")
	return cmd
}

// writeInterfacesTable writes one interface a row. The DEVICE and GUID
// columns appear only where a device name differs from the name a person
// knows (Windows).
func writeInterfacesTable(w io.Writer, list []live.Interface) error {
	windowsNames := false
	for i := range list {
		if list[i].FriendlyName != "" || list[i].GUID != "" {
			windowsNames = true
		}
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	if windowsNames {
		fmt.Fprintln(tw, "NAME\tINDEX\tSTATE\tADDRESSES\tDEVICE\tDESCRIPTION")
	} else {
		fmt.Fprintln(tw, "NAME\tINDEX\tSTATE\tADDRESSES\tDESCRIPTION")
	}
	for i := range list {
		it := &list[i]
		name := it.FriendlyName
		if name == "" {
			name = it.Name
			if windowsNames {
				name = "-"
			}
		}
		index := "-"
		if it.Index > 0 {
			index = strconv.Itoa(it.Index)
		}
		state := "down"
		if it.Up {
			state = "up"
		}
		addrs := make([]string, len(it.Addresses))
		for j, p := range it.Addresses {
			addrs[j] = p.String()
		}
		addr := strings.Join(addrs, ",")
		if addr == "" {
			addr = "-"
		}
		desc := it.Description
		if desc == "" {
			desc = "-"
		}
		if windowsNames {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", name, index, state, addr, it.Name, desc)
		} else {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", name, index, state, addr, desc)
		}
	}
	return tw.Flush()
}

// interfaceJSON is the JSON form of an interface; its field names are part
// of the `tpwatch interfaces --format json` output.
type interfaceJSON struct {
	Name         string   `json:"name"`
	FriendlyName string   `json:"friendly_name,omitempty"`
	GUID         string   `json:"guid,omitempty"`
	Index        int      `json:"index,omitempty"`
	Description  string   `json:"description,omitempty"`
	Addresses    []string `json:"addresses"`
	Up           bool     `json:"up"`
	Loopback     bool     `json:"loopback"`
}

func writeInterfacesJSON(w io.Writer, list []live.Interface) error {
	out := make([]interfaceJSON, len(list))
	for i := range list {
		it := &list[i]
		addrs := make([]string, len(it.Addresses))
		for j, p := range it.Addresses {
			addrs[j] = p.String()
		}
		out[i] = interfaceJSON{
			Name: it.Name, FriendlyName: it.FriendlyName, GUID: it.GUID, Index: it.Index,
			Description: it.Description, Addresses: addrs, Up: it.Up, Loopback: it.Loopback,
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
