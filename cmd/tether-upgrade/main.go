// Command tether-upgrade applies a release tetherctl staged, once, in the
// customer's upgrade window; see internal/upgrader and docs/upgrades.md.
package main

import (
	"context"
	"errors"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/tetherhq/tether/internal/cli"
	"github.com/tetherhq/tether/internal/upgrader"
)

func main() {
	cli.Main("tether-upgrade", true, func(ctx context.Context, args []string) error {
		return upgrader.Main(ctx, args, os.Getenv, os.Stdout, os.Stderr, func(ctx context.Context) (aws.Config, error) {
			return awsconfig.LoadDefaultConfig(ctx)
		})
	}, func(err error) bool { return errors.Is(err, upgrader.ErrUsage) })
}
