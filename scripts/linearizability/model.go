package main

import "github.com/anishathalye/porcupine"

// The stages of one transaction as its client can observe them. The order is the only way a
// transaction moves: nothing goes back, and committed and aborted are final.
type stage int

const (
	none stage = iota
	active
	preparing
	committed
	aborted
)

var outputs = map[string]stage{
	"ok": none, "unknown": none,
	"active": active, "preparing": preparing, "committed": committed, "aborted": aborted,
}

// begin: answered with its xid ("ok"). commit and rollback: answered with the decision.
// status: a read of the state, mapped by the caller onto the four stages.
var kinds = map[string]bool{"begin": true, "commit": true, "rollback": true, "status": true}

// spontaneous: where a transaction may move with no call of its client: the coordinator
// aborts an active one (deadline, a participant's no, a leader change), shows a commit in
// progress as preparing (a commit may be in flight, re-driven by a new leader), and decides a
// preparing one either way. An active transaction is never committed without a commit call.
func spontaneous(from, to stage) bool {
	switch from {
	case active:
		return to == active || to == preparing || to == aborted
	case preparing:
		return to == preparing || to == committed || to == aborted
	default:
		return to == from
	}
}

// step is one call taking effect at its linearization point: the states it may leave behind
// (none: the call cannot take effect here). Moves nobody observed are folded into the next
// call that observes them, which is equivalent because spontaneous moves compose.
func step(from stage, kind string, output string) []stage {
	out := outputs[output]
	switch kind {
	case "begin":
		if from == none {
			return []stage{active}
		}
	case "status":
		if from != none && spontaneous(from, out) {
			return []stage{out}
		}
	case "commit":
		return decide(from, out, committed)
	case "rollback":
		return decide(from, out, aborted)
	}
	return nil
}

// decide: a commit (wanted committed) or rollback (wanted aborted) of a live transaction
// decides it; one already decided answers its decision. An unknown answer leaves any state
// the call could have produced.
func decide(from stage, out stage, wanted stage) []stage {
	if from == none {
		return nil
	}
	if out == none { // unknown
		if from == committed || from == aborted {
			return []stage{from}
		}
		return []stage{from, preparing, wanted, aborted}
	}
	switch {
	case from == committed || from == aborted:
		if out == from {
			return []stage{from}
		}
	case out == aborted:
		return []stage{aborted}
	case out == committed && (wanted == committed || from == preparing):
		return []stage{committed}
	}
	return nil
}

func transactionModel() porcupine.Model {
	nm := porcupine.NondeterministicModel{
		Init: func() []interface{} { return []interface{}{none} },
		Step: func(state, input, output interface{}) []interface{} {
			next := step(state.(stage), input.(string), output.(string))
			states := make([]interface{}, len(next))
			for i, s := range next {
				states[i] = s
			}
			return states
		},
		Equal: func(a, b interface{}) bool { return a.(stage) == b.(stage) },
		DescribeOperation: func(input, output interface{}) string {
			return input.(string) + " -> " + output.(string)
		},
		DescribeState: func(state interface{}) string {
			return [...]string{"none", "active", "preparing", "committed", "aborted"}[state.(stage)]
		},
	}
	return nm.ToModel()
}
