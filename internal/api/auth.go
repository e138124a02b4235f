package api

import (
	"fmt"
	"path"
)

// Key is an API access key. Actions limits it to IAM-style action patterns ("ivs:Get*", "ivs:List*");
// an empty list allows every action.
type Key struct {
	AccessKeyID     string   `yaml:"accessKeyId"`
	SecretAccessKey string   `yaml:"secretAccessKey"`
	Actions         []string `yaml:"actions"`
}

// Keys is the set of keys the API accepts. It implements sigv4.KeyStore.
type Keys struct{ byID map[string]Key }

// NewKeys checks and indexes keys.
func NewKeys(keys []Key) (*Keys, error) {
	k := &Keys{byID: map[string]Key{}}
	for _, key := range keys {
		if key.AccessKeyID == "" || key.SecretAccessKey == "" {
			return nil, fmt.Errorf("api: a key needs both accessKeyId and secretAccessKey")
		}
		if _, dup := k.byID[key.AccessKeyID]; dup {
			return nil, fmt.Errorf("api: access key %s is configured twice", key.AccessKeyID)
		}
		for _, a := range key.Actions {
			if _, err := path.Match(a, "ivs:GetStage"); err != nil {
				return nil, fmt.Errorf("api: key %s: bad action pattern %q: %w", key.AccessKeyID, a, err)
			}
		}
		k.byID[key.AccessKeyID] = key
	}
	return k, nil
}

func (k *Keys) Secret(id string) (string, bool) {
	key, ok := k.byID[id]
	return key.SecretAccessKey, ok
}

// Allowed reports whether the key may perform action ("ivs:<Operation>").
func (k *Keys) Allowed(id, action string) bool {
	key, ok := k.byID[id]
	if !ok {
		return false
	}
	if len(key.Actions) == 0 {
		return true
	}
	for _, pat := range key.Actions {
		if ok, _ := path.Match(pat, action); ok {
			return true
		}
	}
	return false
}
