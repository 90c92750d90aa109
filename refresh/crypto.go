package refresh

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
)

// keyLabel is the HKDF info of the refresh-token key: the session secret
// keys the cookie MAC too, under another label, so the two keys are
// unrelated (RFC 5869 §3.2).
const keyLabel = "groupgate refresh token v1"

// sealer encrypts refresh tokens with AES-256-GCM. The session ID is the
// additional data, so a ciphertext copied to another session's key does
// not decrypt there.
type sealer struct{ aead cipher.AEAD }

func newSealer(secret []byte) (sealer, error) {
	key, err := hkdf.Key(sha256.New, secret, nil, keyLabel, 32)
	if err != nil {
		return sealer{}, fmt.Errorf("derive refresh token key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return sealer{}, fmt.Errorf("refresh token cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return sealer{}, fmt.Errorf("refresh token cipher: %w", err)
	}
	return sealer{aead: aead}, nil
}

// seal returns base64url(nonce || ciphertext) of token for sessionID.
func (s sealer) seal(sessionID, token string) string {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(token)+s.aead.Overhead())
	_, _ = rand.Read(nonce) // never fails since Go 1.24
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, []byte(token), []byte(sessionID)))
}

// open reverses seal; an error means the value was not sealed for this
// session with this secret.
func (s sealer) open(sessionID, sealed string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil || len(b) < s.aead.NonceSize() {
		return "", fmt.Errorf("sealed refresh token is malformed")
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, b[:n], b[n:], []byte(sessionID))
	if err != nil {
		return "", fmt.Errorf("open sealed refresh token: %w", err)
	}
	return string(plain), nil
}
