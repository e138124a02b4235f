package config

import (
	"testing"

	"github.com/spf13/pflag"
)

// TestS3Flags: buckets are directories of the data dir unless --s3-endpoint names a server; the other S3
// settings mean something only with it, and a key id goes with its secret.
func TestS3Flags(t *testing.T) {
	for _, tt := range []struct {
		name  string
		args  []string
		env   map[string]string
		want  Config // the S3 fields and the quota only
		fails bool
	}{
		{"defaults: directories", nil, nil, Config{MaxStorageConfigurations: 5}, false},
		{"a server", []string{"--s3-endpoint", "http://127.0.0.1:7070", "--s3-region", "eu-west-1", "--s3-path-style",
			"--s3-access-key-id", "AK", "--s3-secret-access-key", "SK", "--max-storage-configurations", "20"}, nil,
			Config{S3Endpoint: "http://127.0.0.1:7070", S3Region: "eu-west-1", S3PathStyle: true, S3AccessKeyID: "AK",
				S3SecretAccessKey: "SK", MaxStorageConfigurations: 20}, false},
		{"the AWS chain's credentials", nil, map[string]string{"OPENSTAGE_S3_ENDPOINT": "https://s3.eu-west-1.amazonaws.com",
			"OPENSTAGE_S3_PATH_STYLE": "false"}, Config{S3Endpoint: "https://s3.eu-west-1.amazonaws.com", MaxStorageConfigurations: 5}, false},
		{"path style without a server", []string{"--s3-path-style"}, nil, Config{}, true},
		{"a region without a server", []string{"--s3-region", "us-east-1"}, nil, Config{}, true},
		{"a key without its secret", []string{"--s3-endpoint", "http://h:1", "--s3-access-key-id", "AK"}, nil, Config{}, true},
		{"not a URL", []string{"--s3-endpoint", "127.0.0.1:7070"}, nil, Config{}, true},
		{"negative quota", []string{"--max-storage-configurations", "-1"}, nil, Config{}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
			c := Flags(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			err := Resolve(fs, c, func(k string) string { return tt.env[k] })
			if tt.fails {
				if err == nil {
					t.Fatal("accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := Config{S3Endpoint: c.S3Endpoint, S3Region: c.S3Region, S3PathStyle: c.S3PathStyle, S3AccessKeyID: c.S3AccessKeyID,
				S3SecretAccessKey: c.S3SecretAccessKey, MaxStorageConfigurations: c.MaxStorageConfigurations}
			if got.S3Endpoint != tt.want.S3Endpoint || got.S3Region != tt.want.S3Region || got.S3PathStyle != tt.want.S3PathStyle ||
				got.S3AccessKeyID != tt.want.S3AccessKeyID || got.S3SecretAccessKey != tt.want.S3SecretAccessKey ||
				got.MaxStorageConfigurations != tt.want.MaxStorageConfigurations {
				t.Fatalf("got %+v", got)
			}
		})
	}
}
