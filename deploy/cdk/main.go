// Command cdk synthesizes Tether's reference AWS deployment from one
// deployment.yaml: `cdk synth -c config=PATH`, or TETHER_DEPLOYMENT_CONFIG=PATH,
// or run directly with CDK_OUTDIR set to write the templates without the CDK CLI.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/tetherhq/tether/deploy/cdk/stacks"
	"github.com/tetherhq/tether/internal/deployconfig"
)

func main() {
	if err := run(os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "tether cdk:", err)
		os.Exit(1)
	}
}

func run(getenv func(string) string) error {
	defer jsii.Close()
	app := awscdk.NewApp(nil)
	path := getenv("TETHER_DEPLOYMENT_CONFIG")
	if v, ok := app.Node().TryGetContext(jsii.String("config")).(string); ok && v != "" {
		path = v
	}
	if path == "" {
		return errors.New("no deployment config: pass -c config=PATH to cdk, or set TETHER_DEPLOYMENT_CONFIG=PATH")
	}
	cfg, err := deployconfig.Load(path)
	if err != nil {
		return err
	}
	stacks.New(app, cfg)
	app.Synth(nil)
	return nil
}
