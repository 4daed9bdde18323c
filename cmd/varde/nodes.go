package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/varde-eid/varde/internal/audit"
	"github.com/varde-eid/varde/internal/status"
	"github.com/varde-eid/varde/internal/store"
)

const nodesUsage = `usage: varde nodes <list|forget> --config FILE [flags]

  list     list the nodes that recorded probe results in the last 90 days:
           running, down (silent), or gone from the status page
  forget   take a node that will never come back off the status page
           (--node NAME; --reason TEXT says why in the audit log): its open
           incident is resolved, its history kept. A node that stops
           cleanly leaves by itself; one that is still running is refused,
           and so is one silent for less than three health intervals
           (15s by default), such as one that crashed a moment ago: the
           refusal says when to run it again

Times are printed in UTC (RFC 3339, ending in Z), as varde status prints them.
`

// nodesCmd runs nodes's commands, reading the time from now.
func nodesCmd(ctx context.Context, args []string, stdout, stderr io.Writer, now func() time.Time) error {
	fs, path, err := adminFlags("nodes", nodesUsage, args, stderr)
	if err != nil {
		return err
	}
	var node, reason string
	switch args[0] {
	case "list":
	case "forget":
		fs.StringVar(&node, "node", "", "the node's name, as varde nodes list shows it (required)")
		fs.StringVar(&reason, "reason", "", "why, for the audit log (e.g. \"host decommissioned after a disk failure\")")
	default:
		return unknownSubcommand("nodes", nodesUsage, args[0], stderr, "list", "forget")
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if args[0] == "forget" && node == "" {
		return usageErrorf("nodes forget: --node is required")
	}
	_, svc, st, err := openStatusReader(ctx, *path, now)
	if err != nil {
		return err
	}
	defer st.Close()
	if args[0] == "list" {
		return listNodes(ctx, svc, stdout)
	}
	return forgetNode(ctx, svc, node, reason, stdout, now)
}

func listNodes(ctx context.Context, svc *status.Service, w io.Writer) error {
	nodes, err := svc.Nodes(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tLAST PROBE\tSTATE")
	for _, n := range nodes {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", n.Name, n.LastProbe.UTC().Format(time.RFC3339), nodeState(n))
	}
	return tw.Flush()
}

// nodeState says in words what the status page makes of n.
func nodeState(n status.Node) string {
	switch n.Gone {
	case status.ReasonNodeStopped:
		return "stopped " + n.LeftAt.UTC().Format(time.RFC3339) + ", not on the status page"
	case status.ReasonNodeForgotten:
		return "forgotten " + n.LeftAt.UTC().Format(time.RFC3339) + ", not on the status page"
	case status.ReasonNodeGone:
		return "silent too long, gone from the status page"
	}
	if n.Silent {
		return "silent: down on the status page (varde nodes forget, if it will never come back)"
	}
	return "running"
}

func forgetNode(ctx context.Context, svc *status.Service, node, reason string, w io.Writer, clock func() time.Time) error {
	now := clock()
	details := map[string]string{"node": node, "via": "cli"}
	if reason != "" {
		details["reason"] = reason
	}
	ev := &store.AuditEvent{Type: "node_forgotten", Result: store.ResultSuccess, Details: details}
	(&audit.Log{Now: func() time.Time { return now }}).Prepare(ctx, ev)
	d, err := svc.ForgetNode(ctx, node, ev)
	switch {
	case errors.Is(err, status.ErrNodeRunning):
		return fmt.Errorf("%w; a node stopped cleanly (SIGTERM) leaves the status page by itself", err)
	case errors.Is(err, status.ErrUnknownNode):
		return fmt.Errorf("%w (varde nodes list shows the nodes)", err)
	case err != nil:
		return err
	}
	fmt.Fprintf(w, "forgot node %s at %s.\n", d.Node, d.LeftAt.UTC().Format(time.RFC3339))
	fmt.Fprintln(w, "It leaves every node's status page within seconds; its open incident, if any, is resolved and stays in the history.")
	fmt.Fprintln(w, "If it ever records a probe result again, it is listed again.")
	return nil
}
