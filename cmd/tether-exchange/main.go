// Command tether-exchange mirrors the agent's data directory to the agent
// exchange bucket and applies the operator's decisions from it; see
// internal/exchange and docs/agent.md.
package main

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/tetherhq/tether/internal/cli"
	"github.com/tetherhq/tether/internal/exchange"
)

func main() {
	cli.Main("tether-exchange", true, func(ctx context.Context, args []string) error {
		return exchange.Main(ctx, args, os.Getenv, os.Stdout, os.Stderr, func(ctx context.Context) (aws.Config, error) {
			return awsconfig.LoadDefaultConfig(ctx)
		}, time.Now)
	}, func(err error) bool { return errors.Is(err, exchange.ErrUsage) })
}
