package idtoken

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"math/big"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

// The JWS algorithms (RFC 7518 §3.1, RFC 8037 §3.1) a key set may use.
const (
	ES256 = "ES256"
	ES384 = "ES384"
	EdDSA = "EdDSA"
	RS256 = "RS256"
)

// Algorithms lists the accepted values of Config.Algorithm.
var Algorithms = []string{ES256, ES384, EdDSA, RS256}

var b64 = base64.RawURLEncoding

// sealInfo names what the sealing key is for, so that the same secret
// (session.secret) yields unrelated keys for unrelated uses (RFC 5869 §3.2).
const sealInfo = "groupgate identity-token signing keys v1"

// sealVersion is the first byte of a sealed private key.
const sealVersion = 1

// newSealer returns the AEAD that seals private keys at rest: AES-256-GCM
// under a key derived from secret with HKDF-SHA256.
func newSealer(secret []byte) (cipher.AEAD, error) {
	if len(secret) < 32 {
		return nil, groupgate.Errorf(groupgate.Invalid, "the key-sealing secret must be at least 32 bytes")
	}
	key, err := hkdf.Key(sha256.New, secret, nil, sealInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("derive sealing key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("sealing cipher: %w", err)
	}
	return cipher.NewGCM(block)
}

// additionalData binds a sealed key to its ID and algorithm, so that a row
// whose private key was swapped with another's does not unseal.
func additionalData(kid, alg string) []byte { return []byte(kid + "\x00" + alg) }

func seal(aead cipher.AEAD, kid, alg string, pkcs8 []byte) []byte {
	nonce := make([]byte, aead.NonceSize())
	_, _ = rand.Read(nonce) // crypto/rand.Read never fails (Go 1.24+)
	out := append([]byte{sealVersion}, nonce...)
	return aead.Seal(out, nonce, pkcs8, additionalData(kid, alg))
}

func unseal(aead cipher.AEAD, kid, alg string, sealed []byte) ([]byte, error) {
	n := aead.NonceSize()
	if len(sealed) < 1+n || sealed[0] != sealVersion {
		return nil, fmt.Errorf("sealed key %s: unknown format", kid)
	}
	pt, err := aead.Open(nil, sealed[1:1+n], sealed[1+n:], additionalData(kid, alg))
	if err != nil {
		// Another secret sealed it (session.secret changed, or differs
		// between replicas). Never log the bytes.
		return nil, fmt.Errorf("sealed key %s does not open with this secret", kid)
	}
	return pt, nil
}

// newKey generates a key for alg that starts signing at activeAt, sealed
// with aead.
func newKey(aead cipher.AEAD, alg string, activeAt time.Time) (store.SigningKey, error) {
	var (
		priv crypto.Signer
		err  error
	)
	switch alg {
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ES384:
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case RS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		return store.SigningKey{}, groupgate.Errorf(groupgate.Invalid, "unknown signing algorithm %q", alg)
	}
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("generate %s key: %w", alg, err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("encode %s key: %w", alg, err)
	}
	pub, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("encode %s public key: %w", alg, err)
	}
	var id [12]byte
	_, _ = rand.Read(id[:])
	kid := b64.EncodeToString(id[:])
	return store.SigningKey{ID: kid, Algorithm: alg, PublicKey: pub, PrivateKey: seal(aead, kid, alg, pkcs8), ActiveAt: activeAt}, nil
}

// loadedKey is a stored key ready to use: its JWK, and its signer when the
// private key unseals with this replica's secret.
type loadedKey struct {
	id       string
	alg      string
	activeAt time.Time
	jwk      jwk
	signer   crypto.Signer // nil: cannot sign here
}

// load parses k; a private key that does not unseal leaves signer nil and
// returns the reason, so that the key is still published.
func load(aead cipher.AEAD, k store.SigningKey) (loadedKey, error) {
	lk := loadedKey{id: k.ID, alg: k.Algorithm, activeAt: k.ActiveAt}
	pub, err := x509.ParsePKIXPublicKey(k.PublicKey)
	if err != nil {
		return lk, fmt.Errorf("signing key %s: public key: %w", k.ID, err)
	}
	if lk.jwk, err = jwkOf(k.ID, k.Algorithm, pub); err != nil {
		return lk, err
	}
	pkcs8, err := unseal(aead, k.ID, k.Algorithm, k.PrivateKey)
	if err != nil {
		return lk, err
	}
	priv, err := x509.ParsePKCS8PrivateKey(pkcs8)
	clear(pkcs8)
	if err != nil {
		return lk, fmt.Errorf("signing key %s: private key: %w", k.ID, err)
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return lk, fmt.Errorf("signing key %s: %T cannot sign", k.ID, priv)
	}
	lk.signer = signer
	return lk, nil
}

// jwk is one key of /.well-known/jwks.json (RFC 7517 §4, RFC 7518 §6,
// RFC 8037 §2).
type jwk struct {
	Kty string `json:"kty"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
}

func jwkOf(kid, alg string, pub crypto.PublicKey) (jwk, error) {
	k := jwk{Use: "sig", Alg: alg, Kid: kid}
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		raw, err := p.Bytes()
		if err != nil {
			return k, fmt.Errorf("signing key %s: %w", kid, err)
		}
		size := (len(raw) - 1) / 2
		k.Kty, k.Crv = "EC", p.Curve.Params().Name
		k.X, k.Y = b64.EncodeToString(raw[1:1+size]), b64.EncodeToString(raw[1+size:])
		if (alg == ES256) != (k.Crv == "P-256") || (alg == ES384) != (k.Crv == "P-384") {
			return k, fmt.Errorf("signing key %s: curve %s does not fit %s", kid, k.Crv, alg)
		}
	case ed25519.PublicKey:
		if alg != EdDSA {
			return k, fmt.Errorf("signing key %s: Ed25519 does not fit %s", kid, alg)
		}
		k.Kty, k.Crv, k.X = "OKP", "Ed25519", b64.EncodeToString(p)
	case *rsa.PublicKey:
		if alg != RS256 {
			return k, fmt.Errorf("signing key %s: RSA does not fit %s", kid, alg)
		}
		k.Kty = "RSA"
		k.N = b64.EncodeToString(p.N.Bytes())
		k.E = b64.EncodeToString(big.NewInt(int64(p.E)).Bytes())
	default:
		return k, fmt.Errorf("signing key %s: unsupported public key %T", kid, pub)
	}
	return k, nil
}

// sign returns the JWS signature of signingInput (RFC 7515 §5.1) in the
// form RFC 7518 §3.4 (ECDSA: R||S, fixed size), §3.3 (RSA) and RFC 8037
// §3.1 (Ed25519) define.
func (k loadedKey) sign(signingInput []byte) ([]byte, error) {
	switch priv := k.signer.(type) {
	case *ecdsa.PrivateKey:
		var digest []byte
		switch k.alg {
		case ES256:
			d := sha256.Sum256(signingInput)
			digest = d[:]
		case ES384:
			d := crypto.SHA384.New()
			d.Write(signingInput)
			digest = d.Sum(nil)
		}
		r, s, err := ecdsa.Sign(rand.Reader, priv, digest)
		if err != nil {
			return nil, fmt.Errorf("sign with %s: %w", k.id, err)
		}
		size := (priv.Curve.Params().BitSize + 7) / 8
		out := make([]byte, 2*size)
		r.FillBytes(out[:size])
		s.FillBytes(out[size:])
		return out, nil
	case ed25519.PrivateKey:
		return ed25519.Sign(priv, signingInput), nil
	case *rsa.PrivateKey:
		d := sha256.Sum256(signingInput)
		sig, err := rsa.SignPKCS1v15(nil, priv, crypto.SHA256, d[:])
		if err != nil {
			return nil, fmt.Errorf("sign with %s: %w", k.id, err)
		}
		return sig, nil
	}
	return nil, fmt.Errorf("signing key %s cannot sign here", k.id)
}
