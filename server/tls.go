package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"

	"github.com/ferry-updates/ferry/internal/atomicfile"
)

// selfSignedValidity is how long a self-signed CA and its server
// certificate are valid. The CA key lives only in memory and is discarded
// once the server certificate is signed, so nothing else can ever be
// issued under it.
const selfSignedValidity = 365 * 24 * time.Hour

// SelfSigned creates an ECDSA P-256 certificate authority and a server
// certificate signed by it, valid for hosts (IP addresses or DNS names,
// with or without a port) and always for 127.0.0.1, ::1 and localhost. It
// writes the CA certificate as PEM to caCertFile (atomically, mode 0644)
// for clients to trust, and returns a TLS configuration (TLS 1.2 minimum)
// that presents the server certificate.
//
// Each call makes a new CA: clients need the new caCertFile.
func SelfSigned(hosts []string, caCertFile string) (*tls.Config, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("self-signed CA: %w", err)
	}
	caTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "ferry self-signed CA " + now.UTC().Format(time.RFC3339)},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(selfSignedValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, caCert, err := sign(caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("self-signed CA: %w", err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	ips, names := sans(hosts)
	leafTmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "ferry server"},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.Add(selfSignedValidity - time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: ips,
		DNSNames:    names,
	}
	leafDER, leaf, err := sign(leafTmpl, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	if err := atomicfile.WriteFile(caCertFile, caPEM, 0o644); err != nil {
		return nil, fmt.Errorf("self-signed CA: %w", err)
	}
	cert := tls.Certificate{Certificate: [][]byte{leafDER, caDER}, PrivateKey: leafKey, Leaf: leaf}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
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
