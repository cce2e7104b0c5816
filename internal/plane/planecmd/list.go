package planecmd

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"text/tabwriter"
)

// parseWithOutput parses a listing command's flags and checks --output.
func parseWithOutput(fs *flag.FlagSet, args []string, output *string) (help bool, err error) {
	if help, err := parse(fs, args); help || err != nil {
		return help, err
	}
	return false, checkOutput(*output)
}

// get fetches one admin API path into v.
func (a adminOpts) get(ctx context.Context, env Env, path string, v any) error {
	c, err := a.client(env, true)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodGet, path, nil, v)
}

// show writes items as JSON (--output json; an empty list is [], never
// null) or as a table: header names the tab-separated columns and row
// formats one item's cells.
func show[T any](env Env, output string, items []T, header string, row func(T) string) error {
	if output == "json" {
		if items == nil {
			items = []T{}
		}
		return writeJSONOut(env, items)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, it := range items {
		fmt.Fprintln(tw, row(it))
	}
	return tw.Flush()
}
