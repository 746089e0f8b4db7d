package server

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"

	"github.com/ferry-updates/ferry/internal/atomicfile"
)

// selfSignedValidity is how long a server certificate issued by a CA is
// valid, and how long the throw-away CA of SelfSigned is.
const selfSignedValidity = 365 * 24 * time.Hour

// SelfSigned creates a throw-away ECDSA P-256 certificate authority and a
// server certificate signed by it (see CA.ServerConfig for the names it is
// valid for), writes the CA certificate as PEM to caCertFile (atomically,
// mode 0644) for clients to trust, and returns the TLS configuration that
// presents the server certificate. The CA key is discarded, so nothing else
// can ever be issued under it. Tests and demos use it; a server that is
// restarted keeps its CA with LoadOrCreateCA instead.
//
// Each call makes a new CA: clients need the new caCertFile.
func SelfSigned(hosts []string, caCertFile string) (*tls.Config, error) {
	ca, err := newCA(time.Now())
	if err != nil {
		return nil, err
	}
	cfg, err := ca.ServerConfig(hosts)
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(caCertFile, ca.CertPEM(), 0o644); err != nil {
		return nil, fmt.Errorf("self-signed CA: %w", err)
	}
	return cfg, nil
}

func sign(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, priv *ecdsa.PrivateKey) ([]byte, *x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return der, cert, err
}

// sans splits hosts into IP and DNS subject alternative names, dropping
// ports, duplicates and unspecified addresses (0.0.0.0, ::), and adds the
// loopback names.
func sans(hosts []string) ([]net.IP, []string) {
	var ips []net.IP
	var names []string
	seen := map[string]bool{}
	for _, h := range append([]string{"127.0.0.1", "::1", "localhost"}, hosts...) {
		if host, _, err := net.SplitHostPort(h); err == nil {
			h = host
		}
		h = strings.TrimSuffix(strings.Trim(h, "[]"), ".")
		if h == "" || seen[strings.ToLower(h)] {
			continue
		}
		seen[strings.ToLower(h)] = true
		if ip := net.ParseIP(h); ip != nil {
			if !ip.IsUnspecified() {
				ips = append(ips, ip)
			}
			continue
		}
		names = append(names, strings.ToLower(h))
	}
	return ips, names
}

// LoadKeyPair loads a PEM certificate chain and private key (for
// --tls-cert and --tls-key) and returns a TLS configuration (TLS 1.2
// minimum) that presents it. An expired or not yet valid certificate is an
// error, so the mistake shows at start rather than in every client.
func LoadKeyPair(certFile, keyFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate: %w", err)
	}
	if cert.Leaf == nil {
		return nil, errors.New("load TLS certificate: no certificate")
	}
	now := time.Now()
	if now.After(cert.Leaf.NotAfter) || now.Before(cert.Leaf.NotBefore) {
		return nil, fmt.Errorf("load TLS certificate %s: valid from %s to %s, not now",
			certFile, cert.Leaf.NotBefore.Format(time.RFC3339), cert.Leaf.NotAfter.Format(time.RFC3339))
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}
