// Command verdict-linearizability checks client histories of Verdict transactions with
// Porcupine, one transaction (xid) at a time: each transaction is an object whose state moves
// active -> preparing -> committed | aborted and never back. Reads a JSON history on stdin,
// writes the verdict per transaction on stdout as JSON; exit 0 when every transaction is
// linearizable, 1 when one is not (or the check timed out), 2 for bad input.
//
// Built and cached by scripts/linearizability.sh; used by test/cluster/linearizability.ts.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

// One client call. Return is absent for a call that never answered (timed out, cut off): its
// outcome is unknown and it may take effect at any time after its call, or never.
type op struct {
	Client int    `json:"client"`
	Xid    string `json:"xid"`
	Kind   string `json:"kind"`
	Output string `json:"output"`
	Call   int64  `json:"call"`
	Return *int64 `json:"return"`
}

type verdict struct {
	Xid    string `json:"xid"`
	Result string `json:"result"`
	Ops    int    `json:"ops"`
	Viz    string `json:"visualization,omitempty"`
}

func main() {
	timeout := flag.Duration("timeout", 10*time.Second, "per transaction")
	vizDir := flag.String("visualize", "", "write an HTML visualization of each failing transaction here")
	flag.Parse()
	var history struct {
		Operations []op `json:"operations"`
	}
	if err := json.NewDecoder(os.Stdin).Decode(&history); err != nil {
		fmt.Fprintln(os.Stderr, "bad history:", err)
		os.Exit(2)
	}
	byXid := map[string][]porcupine.Operation{}
	var horizon int64
	for _, o := range history.Operations {
		if err := validate(o); err != nil {
			fmt.Fprintln(os.Stderr, "bad operation:", err)
			os.Exit(2)
		}
		if o.Return != nil && *o.Return > horizon {
			horizon = *o.Return
		}
		if o.Call > horizon {
			horizon = o.Call
		}
	}
	for _, o := range history.Operations {
		ret := horizon + 1 // unknown outcome: it may take effect at any time after its call
		if o.Return != nil {
			ret = *o.Return
		}
		byXid[o.Xid] = append(byXid[o.Xid], porcupine.Operation{
			ClientId: o.Client, Input: o.Kind, Call: o.Call, Output: o.Output, Return: ret,
		})
	}
	xids := make([]string, 0, len(byXid))
	for x := range byXid {
		xids = append(xids, x)
	}
	sort.Strings(xids)
	model := transactionModel()
	verdicts := make([]verdict, 0, len(xids))
	failed := false
	for _, x := range xids {
		res, info := porcupine.CheckOperationsVerbose(model, byXid[x], *timeout)
		v := verdict{Xid: x, Result: string(res), Ops: len(byXid[x])}
		if res != porcupine.Ok {
			failed = true
			if *vizDir != "" {
				v.Viz = filepath.Join(*vizDir, fmt.Sprintf("xid-%d.html", len(verdicts)))
				if err := os.MkdirAll(*vizDir, 0o755); err != nil {
					v.Viz = "not written: " + err.Error()
				} else if err := porcupine.VisualizePath(model, info, v.Viz); err != nil {
					v.Viz = "not written: " + err.Error()
				}
			}
		}
		verdicts = append(verdicts, v)
	}
	_ = json.NewEncoder(os.Stdout).Encode(map[string]interface{}{"ok": !failed, "transactions": verdicts})
	if failed {
		os.Exit(1)
	}
}

func validate(o op) error {
	if o.Xid == "" {
		return fmt.Errorf("an operation without xid")
	}
	if _, ok := kinds[o.Kind]; !ok {
		return fmt.Errorf("%s: unknown kind %q", o.Xid, o.Kind)
	}
	if _, ok := outputs[o.Output]; !ok {
		return fmt.Errorf("%s: unknown output %q", o.Xid, o.Output)
	}
	if o.Return != nil && *o.Return < o.Call {
		return fmt.Errorf("%s: returns before its call", o.Xid)
	}
	if (o.Return == nil) != (o.Output == "unknown") {
		return fmt.Errorf("%s: an unknown output is exactly a call that never returned", o.Xid)
	}
	return nil
}
