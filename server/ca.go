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
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/ferry-updates/ferry/internal/atomicfile"
)

// caValidity is how long a CA made by LoadOrCreateCA is valid. It is kept
// (its key in a 0600 file) and reused on every start, so the CA file that
// clients were given keeps working across restarts.
const caValidity = 5 * 365 * 24 * time.Hour

// CA is a certificate authority that issues the server's own certificate
// for self-signed serving. It is a small ECDSA P-256 CA that may sign only
// end-entity certificates (path length 0).
type CA struct {
	cert  *x509.Certificate
	der   []byte
	key   *ecdsa.PrivateKey
	isNew bool
}

// CAKeyFile is where the key of the CA whose certificate is in certFile is
// kept: the same name with ".key" in place of ".pem" (or ".key" appended).
func CAKeyFile(certFile string) string {
	return strings.TrimSuffix(certFile, ".pem") + ".key"
}

// LoadOrCreateCA returns the CA kept in certFile (PEM certificate) and
// keyFile (PEM PKCS#8 private key) when keyFile exists, and otherwise
// makes a new one in memory. It writes nothing: call Save once the server
// is sure to serve, so that a failed start leaves a working CA file alone.
//
// A key without its certificate, a certificate that does not belong to the
// key or is not a CA, a key file that others may read (unix) and a CA that
// expires within a day are errors.
func LoadOrCreateCA(certFile, keyFile string) (*CA, error) {
	keyPEM, err := os.ReadFile(keyFile)
	if errors.Is(err, fs.ErrNotExist) {
		return newCA(time.Now())
	}
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	if err := checkKeyFileMode(keyFile); err != nil {
		return nil, err
	}
	certPEM, err := os.ReadFile(certFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("CA key %s is there but its certificate %s is not: restore it, or remove the key to make a new CA", keyFile, certFile)
	}
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	ca, err := parseCA(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("CA %s with key %s: %w", certFile, keyFile, err)
	}
	if time.Until(ca.cert.NotAfter) < 24*time.Hour {
		return nil, fmt.Errorf("CA %s expires %s: remove it and %s to make a new one (clients then need the new %s)",
			certFile, ca.cert.NotAfter.Format(time.RFC3339), keyFile, filepath.Base(certFile))
	}
	return ca, nil
}

func checkKeyFileMode(keyFile string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	fi, err := os.Stat(keyFile)
	if err != nil {
		return fmt.Errorf("CA key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("CA key %s has mode %v: others may read it; chmod 600 it", keyFile, fi.Mode().Perm())
	}
	return nil
}

func newCA(now time.Time) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("self-signed CA: %w", err)
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "ferry self-signed CA " + now.UTC().Format(time.RFC3339)},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, cert, err := sign(tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("self-signed CA: %w", err)
	}
	return &CA{cert: cert, der: der, key: key, isNew: true}, nil
}

func parseCA(certPEM, keyPEM []byte) (*CA, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, err
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil || kb.Type != "PRIVATE KEY" {
		return nil, errors.New("no PEM private key")
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, err
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || !key.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New("the key does not belong to the certificate")
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, errors.New("the certificate is not a CA")
	}
	return &CA{cert: cert, der: cb.Bytes, key: key}, nil
}

// New reports whether LoadOrCreateCA made the CA (so Save has to write it)
// rather than loading it.
func (ca *CA) New() bool { return ca.isNew }

// CertPEM returns the CA certificate, PEM-encoded, for clients to trust.
func (ca *CA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.der})
}

// Save writes the CA certificate to certFile (mode 0644) and then its key
// to keyFile (mode 0600), each atomically. If it stops in between, the
// next LoadOrCreateCA finds no key and makes a new CA.
func (ca *CA) Save(certFile, keyFile string) error {
	kder, err := x509.MarshalPKCS8PrivateKey(ca.key)
	if err != nil {
		return fmt.Errorf("CA key: %w", err)
	}
	if err := atomicfile.WriteFile(certFile, ca.CertPEM(), 0o644); err != nil {
		return fmt.Errorf("CA certificate: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	if err := atomicfile.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return fmt.Errorf("CA key: %w", err)
	}
	ca.isNew = false
	return nil
}

// ServerConfig issues a new server certificate under ca for hosts (IP
// addresses or DNS names, with or without a port; always 127.0.0.1, ::1
// and localhost), valid for at most a year and never past the CA, and
// returns a TLS configuration (TLS 1.2 minimum) that presents it.
func (ca *CA) ServerConfig(hosts []string) (*tls.Config, error) {
	now := time.Now()
	notAfter := now.Add(selfSignedValidity)
	if last := ca.cert.NotAfter.Add(-time.Minute); last.Before(notAfter) {
		notAfter = last
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	ips, names := sans(hosts)
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "ferry server"},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: ips,
		DNSNames:    names,
	}
	leafDER, leaf, err := sign(tmpl, ca.cert, &leafKey.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	cert := tls.Certificate{Certificate: [][]byte{leafDER, ca.der}, PrivateKey: leafKey, Leaf: leaf}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}
