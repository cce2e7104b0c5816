package ctl

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/tetherhq/tether/internal/deployconfig"
)

const scaleUsage = `usage: tetherctl scale workers [--min N] [--max M] [--yes] [--output json]
       tetherctl scale api --count N [--yes] [--output json]

Changes how many tasks run, through the <name>-services stack's parameters
(docs/runbooks/scaling.md):

  workers  WorkerMinTasks and WorkerMaxTasks, the range autoscaling keeps the
           workers in (it scales on jobs waiting plus jobs in flight); give
           --min, --max or both (0 to %[2]d, min never above max)
  api      ApiTaskCount, how many API tasks run (1 to %[1]d)

Only those parameters change: the template, the images and every other
parameter keep their values. The change set is shown first and applied once
you confirm (or at once with --yes); CloudFormation then waits for ECS to
reach the new count. A later tetherctl deploy keeps the counts set here:
deployment.yaml's sizing.api_tasks, worker_min and worker_max are only the
first deploy's values.

`

// scaleParameters are the services stack's task counts
// (deploy/cdk/stacks/services.go).
const (
	apiCountParameter  = "ApiTaskCount"
	workerMinParameter = "WorkerMinTasks"
	workerMaxParameter = "WorkerMaxTasks"
)

// scaleReport is what tetherctl scale --output json prints.
type scaleReport struct {
	Stack   string            `json:"stack"`
	Service string            `json:"service"` // api | workers
	From    map[string]string `json:"from"`
	To      map[string]string `json:"to"`
	Changed bool              `json:"changed"`
}

func scaleCmd(ctx context.Context, args []string, env Env) error {
	help := fmt.Sprintf(scaleUsage, deployconfig.MaxAPITasks, deployconfig.MaxWorkerTasks)
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(env.Stdout, help)
		if len(args) == 0 {
			return fmt.Errorf("%w: tetherctl scale: say what to scale: workers or api", errUsage)
		}
		return nil
	}
	what := args[0]
	if what != "workers" && what != "api" {
		return fmt.Errorf("%w: tetherctl scale: %q is not something to scale: want workers or api", errUsage, what)
	}
	var df deployFlags
	fs := flag.NewFlagSet("scale "+what, flag.ContinueOnError)
	df.register(fs)
	var minF, maxF, countF intFlag
	if what == "workers" {
		fs.Var(&minF, "min", fmt.Sprintf("the fewest worker tasks `N` (0 to %d)", deployconfig.MaxWorkerTasks))
		fs.Var(&maxF, "max", fmt.Sprintf("the most worker tasks `M` (1 to %d)", deployconfig.MaxWorkerTasks))
	} else {
		fs.Var(&countF, "count", fmt.Sprintf("how many API tasks `N` run (1 to %d)", deployconfig.MaxAPITasks))
	}
	yes := fs.Bool("yes", false, "do not ask for confirmation (the change set is still shown)")
	timeout := fs.Duration("timeout", 30*time.Minute, "how long the change may take, ECS reaching the new count included")
	if helped, err := parseFlagsOnly(env, fs, args[1:], help+flagHelp(fs)); helped || err != nil {
		return err
	}
	if err := checkScaleFlags(what, minF, maxF, countF); err != nil {
		return err
	}
	dc, err := df.load()
	if err != nil {
		return err
	}
	if what == "api" && dc.Sizing.MultiAZ && countF.n < 2 {
		return fmt.Errorf("%w: tetherctl scale api: --count %d: deployment.yaml's sizing.multi_az needs at least 2 API tasks so each zone serves; pass --count 2 or more", errUsage, countF.n)
	}
	a, err := connect(ctx, env, dc, df)
	if err != nil {
		return fmt.Errorf("tetherctl scale: %w", err)
	}
	rep, err := runScale(ctx, env, a, dc, what, minF, maxF, countF, *yes, df.output, *timeout)
	if err != nil {
		return fmt.Errorf("tetherctl scale %s: %w", what, err)
	}
	if df.output == "json" {
		return writeJSON(env.Stdout, rep)
	}
	switch {
	case !rep.Changed:
		fmt.Fprintf(env.Stdout, "%s already has %s: nothing to change\n", rep.Stack, paramList(rep.To))
	default:
		fmt.Fprintf(env.Stdout, "%s now has %s (was %s)\n", rep.Stack, paramList(rep.To), paramList(rep.From))
	}
	return nil
}

// intFlag is an integer flag that knows whether it was given.
type intFlag struct {
	set bool
	n   int
}

func (f *intFlag) String() string {
	if f == nil || !f.set {
		return ""
	}
	return strconv.Itoa(f.n)
}

func (f *intFlag) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("%q is not a whole number", s)
	}
	f.set, f.n = true, n
	return nil
}

// checkScaleFlags checks what can be checked before reading the stack.
func checkScaleFlags(what string, minF, maxF, countF intFlag) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: tetherctl scale %s: %s", errUsage, what, fmt.Sprintf(format, args...))
	}
	if what == "api" {
		if !countF.set {
			return bad("pass --count N, how many API tasks run (1 to %d)", deployconfig.MaxAPITasks)
		}
		if countF.n < 1 || countF.n > deployconfig.MaxAPITasks {
			return bad("--count %d is out of range: want 1 to %d (at least 1 keeps the service answering)", countF.n, deployconfig.MaxAPITasks)
		}
		return nil
	}
	if !minF.set && !maxF.set {
		return bad("pass --min N, --max M or both: the range of worker tasks")
	}
	if minF.set && (minF.n < 0 || minF.n > deployconfig.MaxWorkerTasks) {
		return bad("--min %d is out of range: want 0 to %d", minF.n, deployconfig.MaxWorkerTasks)
	}
	if maxF.set && (maxF.n < 1 || maxF.n > deployconfig.MaxWorkerTasks) {
		return bad("--max %d is out of range: want 1 to %d (0 would stop every job)", maxF.n, deployconfig.MaxWorkerTasks)
	}
	if minF.set && maxF.set && minF.n > maxF.n {
		return bad("--min %d is above --max %d: the fewest tasks cannot exceed the most", minF.n, maxF.n)
	}
	return nil
}

// runScale reads the services stack's counts, works out the new ones and
// applies them through setStackParameters.
func runScale(ctx context.Context, env Env, a *awsSession, dc *deployconfig.Config, what string, minF, maxF, countF intFlag, yes bool, output string, timeout time.Duration) (scaleReport, error) {
	stack := dc.Name + "-services"
	rep := scaleReport{Stack: stack, Service: what, From: map[string]string{}, To: map[string]string{}}
	cctx, cancel := callCtx(ctx)
	st, err := describeStack(cctx, a.CloudFormation(), stack)
	cancel()
	if err != nil {
		return rep, err
	}
	if st == nil {
		return rep, fmt.Errorf("there is no %s stack: install with tetherctl deploy first", stack)
	}
	current := map[string]string{}
	for _, p := range st.Parameters {
		current[aws.ToString(p.ParameterKey)] = aws.ToString(p.ParameterValue)
	}
	names := []string{apiCountParameter}
	if what == "workers" {
		names = []string{workerMinParameter, workerMaxParameter}
	}
	for _, n := range names {
		v, ok := current[n]
		if !ok {
			return rep, fmt.Errorf("the %s stack has no %s parameter: it was deployed by an earlier tetherctl; run tetherctl deploy with this one first, then scale", stack, n)
		}
		rep.From[n] = v
		rep.To[n] = v
	}
	if what == "api" {
		rep.To[apiCountParameter] = strconv.Itoa(countF.n)
	} else {
		lo, hi := minF.n, maxF.n
		if !minF.set {
			if lo, err = strconv.Atoi(current[workerMinParameter]); err != nil {
				return rep, fmt.Errorf("the %s stack's %s is %q, not a number: pass --min as well", stack, workerMinParameter, current[workerMinParameter])
			}
		}
		if !maxF.set {
			if hi, err = strconv.Atoi(current[workerMaxParameter]); err != nil {
				return rep, fmt.Errorf("the %s stack's %s is %q, not a number: pass --max as well", stack, workerMaxParameter, current[workerMaxParameter])
			}
		}
		if lo > hi {
			given, other, otherName := "--min "+strconv.Itoa(lo), hi, "maximum"
			if !minF.set {
				given, other, otherName = "--max "+strconv.Itoa(hi), lo, "minimum"
			}
			return rep, fmt.Errorf("%w: %s would leave the workers' minimum above their maximum (the stack's %s is %d): pass --min and --max together", errUsage, given, otherName, other)
		}
		rep.To[workerMinParameter], rep.To[workerMaxParameter] = strconv.Itoa(lo), strconv.Itoa(hi)
	}
	set := map[string]string{}
	for _, n := range names {
		if rep.To[n] != rep.From[n] {
			set[n] = rep.To[n]
		}
	}
	if len(set) == 0 {
		return rep, nil
	}
	w := progressWriter(env, output)
	fmt.Fprintf(w, "Scale %s in %s: %s → %s\n", what, stack, paramList(rep.From), paramList(rep.To))
	ctx, cancel = context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := setStackParameters(ctx, env, a, stack, set, yes, w); err != nil {
		return rep, err
	}
	rep.Changed = true
	return rep, nil
}

// paramList renders parameters as "A=1, B=2" in name order.
func paramList(m map[string]string) string {
	s := ""
	for i, k := range sortedKeys(m) {
		if i > 0 {
			s += ", "
		}
		s += k + "=" + m[k]
	}
	return s
}
