// Command plane synthesizes the vendor plane's AWS deployment
// (planestack): `cdk synth -c certificateArn=… -c image=REPO@sha256:…`,
// with the account and region from CDK_DEFAULT_ACCOUNT/CDK_DEFAULT_REGION
// (or -c account=… -c region=…). docs/plane.md says how to run it.
package main

import (
	"fmt"
	"os"
	"strconv"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/tetherhq/tether/deploy/plane/planestack"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "tether plane cdk:", err)
		os.Exit(1)
	}
}

func run() error {
	defer jsii.Close()
	app := awscdk.NewApp(nil)
	ctx := func(key, env, def string) string {
		if v, ok := app.Node().TryGetContext(jsii.String(key)).(string); ok && v != "" {
			return v
		}
		if v := os.Getenv(env); v != "" {
			return v
		}
		return def
	}
	replicas, err := strconv.Atoi(ctx("replicas", "TETHER_PLANE_REPLICAS", "2"))
	if err != nil {
		return fmt.Errorf("replicas: %w", err)
	}
	_, err = planestack.New(app, planestack.Props{
		Name:           ctx("name", "TETHER_PLANE_STACK", "tether-plane"),
		Account:        ctx("account", "CDK_DEFAULT_ACCOUNT", ""),
		Region:         ctx("region", "CDK_DEFAULT_REGION", ""),
		CertificateARN: ctx("certificateArn", "TETHER_PLANE_CERTIFICATE_ARN", ""),
		Image:          ctx("image", "TETHER_PLANE_IMAGE", ""),
		KeysDir:        ctx("keysDir", "TETHER_PLANE_KEYS_DIR", ""),
		Replicas:       replicas,
		AlarmEmail:     ctx("alarmEmail", "TETHER_PLANE_ALARM_EMAIL", ""),

		OIDCIssuer:          ctx("oidcIssuer", "TETHER_PLANE_OIDC_ISSUER", ""),
		OIDCClientID:        ctx("oidcClientId", "TETHER_PLANE_OIDC_CLIENT_ID", ""),
		OIDCRedirectURL:     ctx("oidcRedirectUrl", "TETHER_PLANE_OIDC_REDIRECT_URL", ""),
		OIDCClientSecretARN: ctx("oidcClientSecretArn", "TETHER_PLANE_OIDC_CLIENT_SECRET_ARN", ""),
	})
	if err != nil {
		return err
	}
	app.Synth(nil)
	return nil
}
