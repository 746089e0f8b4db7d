// Package awskms signs TUF metadata with an ECDSA P-256 key held in AWS KMS
// (or any server that speaks the KMS API). Importing it registers the
// "awskms://" scheme with keys.Open; the package is separate so that a
// program that only verifies updates never links the AWS SDK.
//
// # References
//
//	awskms://KEY?region=REGION&endpoint=URL
//
// KEY is a key ID, a key ARN or "alias/NAME" (a leading "/" is ignored, so
// "awskms:///alias/NAME" works too). region is optional where the AWS
// configuration names one (AWS_REGION, the shared config file). endpoint
// replaces the KMS endpoint; without it the SDK's own (AWS_ENDPOINT_URL_KMS,
// AWS_ENDPOINT_URL, the shared config file, else AWS's). Whatever endpoint
// is in effect must be https://, except that plain http:// is accepted for
// a loopback IP address only (127.0.0.0/8, ::1): that is for a local test
// server such as local-kms and never reaches another machine. Credentials
// come from the SDK's usual chain (environment, shared files, instance
// role); none are ever put in a reference.
//
// # Keys
//
// The key must have KeySpec ECC_NIST_P256 and KeyUsage SIGN_VERIFY. Open
// reads its public key once and signs with the key's ARN from then on, so a
// later change of what an alias points to cannot switch keys under a
// running signer. Sign sends only the SHA-256 digest (MessageType DIGEST,
// ECDSA_SHA_256) and keys.NewECDSASigner checks every DER signature
// against the public key.
//
// Signers are safe for concurrent use. Every KMS call is bounded by the
// caller's context and by callTimeout.
package awskms

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/ferry-updates/ferry/keys"
)

// Scheme is the reference prefix this package registers.
const Scheme = "awskms://"

// callTimeout bounds one KMS request, retries included.
const callTimeout = 30 * time.Second

func init() {
	keys.Register(Scheme, func(ctx context.Context, ref string, _ keys.Passphrase) (keys.Signer, error) {
		return Open(ctx, ref)
	})
}

// Ref is a parsed awskms:// reference.
type Ref struct {
	KeyID    string // key ID, ARN or alias/NAME
	Region   string // "" means the SDK's configured region
	Endpoint string // "" means the SDK's configured endpoint
}

// ParseRef parses an awskms:// reference (see the package doc). Unknown
// parameters, an empty key and an endpoint that is neither https:// nor
// http:// to a loopback address are errors.
func ParseRef(ref string) (Ref, error) {
	rest, ok := strings.CutPrefix(ref, Scheme)
	if !ok {
		return Ref{}, fmt.Errorf("signer %s: want an %s reference", ref, Scheme)
	}
	key, query, _ := strings.Cut(rest, "?")
	r := Ref{KeyID: strings.TrimPrefix(key, "/")}
	if r.KeyID == "" {
		return Ref{}, fmt.Errorf("signer %s: no key ID or alias", ref)
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return Ref{}, fmt.Errorf("signer %s: %w", ref, err)
	}
	for name, v := range q {
		if len(v) != 1 {
			return Ref{}, fmt.Errorf("signer %s: parameter %q given %d times", ref, name, len(v))
		}
		switch name {
		case "region":
			r.Region = v[0]
		case "endpoint":
			r.Endpoint = v[0]
		default:
			return Ref{}, fmt.Errorf("signer %s: unknown parameter %q (want region, endpoint)", ref, name)
		}
	}
	if r.Endpoint != "" {
		if err := checkEndpoint(r.Endpoint); err != nil {
			return Ref{}, fmt.Errorf("signer %s: %w", ref, err)
		}
	}
	return r, nil
}

// checkEndpoint accepts https:// URLs, and http:// only to a loopback IP
// literal (insecure transport, local test servers only).
func checkEndpoint(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("endpoint %q: %w", s, err)
	}
	switch {
	case u.Host == "":
		return fmt.Errorf("endpoint %q: no host", s)
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && insecureLoopbackHTTP(u.Hostname()):
		return nil
	}
	return fmt.Errorf("endpoint %q: want https:// (plain http:// only to a loopback address)", s)
}

// insecureLoopbackHTTP reports whether plain HTTP to host is allowed: only
// to a loopback IP literal, which never leaves this machine. A name such
// as "localhost" is not enough, since resolving it is outside our control.
func insecureLoopbackHTTP(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Open returns a signer for the KMS key ref names, after checking that the
// key is an ECC_NIST_P256 SIGN_VERIFY key that offers ECDSA_SHA_256.
func Open(ctx context.Context, ref string) (keys.Signer, error) {
	r, err := ParseRef(ref)
	if err != nil {
		return nil, err
	}
	c, err := newClient(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("signer %s: %w", ref, err)
	}
	arn, pub, err := publicKey(ctx, c, r.KeyID)
	if err != nil {
		return nil, fmt.Errorf("signer %s: %w", ref, err)
	}
	return keys.NewECDSASigner(Scheme+r.KeyID, pub, func(ctx context.Context, digest []byte) ([]byte, error) {
		ctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		out, err := c.Sign(ctx, &kms.SignInput{
			KeyId:            aws.String(arn),
			Message:          digest,
			MessageType:      types.MessageTypeDigest,
			SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256,
		})
		if err != nil {
			return nil, fmt.Errorf("kms sign: %w", err)
		}
		return out.Signature, nil
	})
}

func newClient(ctx context.Context, r Ref) (*kms.Client, error) {
	var opts []func(*config.LoadOptions) error
	if r.Region != "" {
		opts = append(opts, config.WithRegion(r.Region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	if cfg.Region == "" {
		return nil, errors.New("no region: add ?region=REGION or set AWS_REGION")
	}
	c := kms.NewFromConfig(cfg, func(o *kms.Options) {
		if r.Endpoint != "" {
			o.BaseEndpoint = aws.String(r.Endpoint)
		}
	})
	// The endpoint in effect may come from the environment or a config
	// file: it is held to the same rule as one given in the reference.
	if ep := c.Options().BaseEndpoint; ep != nil {
		if err := checkEndpoint(*ep); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// publicKey returns the key's ARN and its P-256 public key, refusing any
// other kind of key.
func publicKey(ctx context.Context, c *kms.Client, keyID string) (string, *ecdsa.PublicKey, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	out, err := c.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(keyID)})
	if err != nil {
		return "", nil, fmt.Errorf("kms get public key: %w", err)
	}
	switch {
	case out.KeySpec != types.KeySpecEccNistP256:
		return "", nil, fmt.Errorf("key spec %s: want %s", out.KeySpec, types.KeySpecEccNistP256)
	case out.KeyUsage != types.KeyUsageTypeSignVerify:
		return "", nil, fmt.Errorf("key usage %s: want %s", out.KeyUsage, types.KeyUsageTypeSignVerify)
	case !slices.Contains(out.SigningAlgorithms, types.SigningAlgorithmSpecEcdsaSha256):
		return "", nil, fmt.Errorf("key does not offer %s", types.SigningAlgorithmSpecEcdsaSha256)
	case out.KeyId == nil || *out.KeyId == "":
		return "", nil, errors.New("kms returned no key ARN")
	}
	k, err := x509.ParsePKIXPublicKey(out.PublicKey)
	if err != nil {
		return "", nil, fmt.Errorf("kms public key: %w", err)
	}
	pub, ok := k.(*ecdsa.PublicKey)
	if !ok {
		return "", nil, fmt.Errorf("kms public key is a %T", k)
	}
	return *out.KeyId, pub, nil
}
