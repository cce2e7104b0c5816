package ctl

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/tetherhq/tether/internal/deployconfig"
)

// deployFlags are the flags every command that works on an AWS deployment
// takes: the deployment's file, the AWS CLI's --profile and --region, and
// the output format.
type deployFlags struct {
	configPath string
	output     string
	aws        awsSettings
}

func (d *deployFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.configPath, "config", "./deployment.yaml", "the deployment's `deployment.yaml`")
	fs.StringVar(&d.aws.Profile, "profile", "", "the AWS `profile` to use, as the AWS CLI's --profile")
	fs.StringVar(&d.aws.Region, "region", "", "the AWS `region`, as the AWS CLI's --region (it must be deployment.yaml's)")
	fs.StringVar(&d.output, "output", "text", "`text` or json")
}

// load checks the output format and reads deployment.yaml.
func (d *deployFlags) load() (*deployconfig.Config, error) {
	if d.output != "text" && d.output != "json" {
		return nil, fmt.Errorf("%w: --output %q: want text or json", errUsage, d.output)
	}
	dc, err := deployconfig.Load(d.configPath)
	if err != nil {
		return nil, fmt.Errorf("%w: --config %s: %w\n(pass --config with the path to your deployment.yaml; its fields are described in docs/deployment-config.md)",
			errUsage, d.configPath, err)
	}
	return dc, nil
}

// parseArgs parses flags that may come before, between or after the
// positional arguments, which it returns. It prints nothing: -h and --help
// come back as flag.ErrHelp, other mistakes as usage errors naming the
// command.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: tetherctl %s: %v (see tetherctl %s --help)", errUsage, fs.Name(), err, fs.Name())
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

// flagHelp renders a flag set's flags for a usage text.
func flagHelp(fs *flag.FlagSet) string {
	var b []byte
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		line += "\n      " + usage
		if f.DefValue != "" && f.DefValue != "false" {
			line += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		b = append(b, line+"\n"...)
	})
	return string(b)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
