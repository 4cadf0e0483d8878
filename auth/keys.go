package auth

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the length of generated session keys: 32 bytes gives HMAC-SHA256 a full-strength key
// and selects AES-256 for the block key.
const KeySize = 32

// LoadOrCreateKey reads a base64 key file. When the file does not exist and create is true, it
// generates a random key and writes it with mode 0600 (the directory with 0700).
func LoadOrCreateKey(path string, create bool) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && create {
		key := make([]byte, KeySize)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("auth: generate key: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("auth: create key directory: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("auth: write key %s: %w", path, err)
		}
		if _, err := f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n"); err != nil {
			f.Close()
			return nil, fmt.Errorf("auth: write key %s: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("auth: write key %s: %w", path, err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("auth: read key %s: %w", path, err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, fmt.Errorf("auth: key %s is not base64: %w", path, err)
	}
	return key, nil
}

// CheckKeys validates session key lengths; the messages name what is wrong so that config
// validation can attach the key name.
func CheckKeys(hashKey, blockKey []byte) (hashErr, blockErr error) {
	if len(hashKey) < 32 {
		hashErr = fmt.Errorf("hash key must be at least 32 bytes, got %d", len(hashKey))
	}
	switch len(blockKey) {
	case 16, 24, 32:
	default:
		blockErr = fmt.Errorf("block key must be 16, 24 or 32 bytes (AES), got %d", len(blockKey))
	}
	return hashErr, blockErr
}
