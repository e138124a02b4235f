package store

import (
	"encoding/json"
	"fmt"

	"github.com/openstage/openstage/internal/ivs"
)

// How the stores keep a stage's recording configuration (migrations 0003): the storage configuration id in
// a column of its own, which StagesUsingStorageConfiguration looks up, and the other members as the JSON of
// ivs.AutoRecording, whose zero value (the model's defaults) is "{}". Both stores use these two functions,
// so a configuration written by one reads back the same from the other.

// EncodeRecording returns the columns of r: the storage configuration id and the JSON of the rest.
func EncodeRecording(r ivs.AutoRecording) (id, doc string, err error) {
	b, err := json.Marshal(r)
	if err != nil {
		return "", "", fmt.Errorf("store: encode recording configuration: %w", err)
	}
	return string(r.StorageConfigurationID), string(b), nil
}

// DecodeRecording is the inverse of EncodeRecording.
func DecodeRecording(id, doc string) (ivs.AutoRecording, error) {
	var r ivs.AutoRecording
	if doc != "" && doc != "{}" {
		if err := json.Unmarshal([]byte(doc), &r); err != nil {
			return r, fmt.Errorf("store: decode recording configuration: %w", err)
		}
	}
	r.StorageConfigurationID = ivs.StorageConfigurationID(id)
	return r, nil
}
