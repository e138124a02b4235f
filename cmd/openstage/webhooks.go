package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/spf13/cobra"

	"github.com/openstage/openstage/internal/notify"
)

// webhooksCmd is the operators' client of a running server's webhook admin (internal/notify Admin): the
// dead letters, and their replay. It signs its requests with SigV4 like the AWS CLI, with the standard AWS
// credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, ...).
func webhooksCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "webhooks", Short: "List the webhooks' dead letters and replay them, on a running server"}
	var server, region string
	cmd.PersistentFlags().StringVar(&server, "endpoint-url", "http://127.0.0.1:8080", "the openstage server (its public URL)")
	cmd.PersistentFlags().StringVar(&region, "region", "", "the region to sign for (default: the AWS configuration's, else us-east-1)")

	var endpoint string
	list := &cobra.Command{Use: "dead-letters", Short: "List the notifications a webhook endpoint did not accept", Args: cobra.NoArgs}
	list.Flags().StringVar(&endpoint, "endpoint", "", "only this webhook endpoint's (its name in the config file)")
	list.RunE = func(cmd *cobra.Command, _ []string) error {
		path := "/webhooks/dead-letters"
		if endpoint != "" {
			path += "?endpoint=" + url.QueryEscape(endpoint)
		}
		var out struct {
			DeadLetters []notify.DeadLetterView `json:"deadLetters"`
		}
		if err := adminCall(cmd.Context(), server, region, http.MethodGet, path, nil, &out); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ENDPOINT\tID\tATTEMPTS\tGIVEN UP\tREPLAY\tLAST ERROR")
		for _, d := range out.DeadLetters {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%v\t%s\n", d.Endpoint, d.ID, d.Attempts, d.At.Format(time.RFC3339), d.Replay, d.LastError)
		}
		return tw.Flush()
	}

	var ids []string
	replay := &cobra.Command{Use: "replay", Short: "Deliver an endpoint's dead letters again (all of them, or --id ones)", Args: cobra.NoArgs}
	replay.Flags().StringVar(&endpoint, "endpoint", "", "the webhook endpoint (its name in the config file)")
	replay.Flags().StringSliceVar(&ids, "id", nil, "a notification id to replay (repeatable; default: all the endpoint's dead letters)")
	_ = replay.MarkFlagRequired("endpoint")
	replay.RunE = func(cmd *cobra.Command, _ []string) error {
		body, _ := json.Marshal(notify.ReplayRequest{Endpoint: endpoint, IDs: ids})
		var out struct {
			Replayed int `json:"replayed"`
		}
		if err := adminCall(cmd.Context(), server, region, http.MethodPost, "/webhooks/replay", body, &out); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%d dead letters of %s will be delivered again\n", out.Replayed, endpoint)
		return nil
	}
	cmd.AddCommand(list, replay)
	return cmd
}

// adminCall makes one SigV4-signed request to the server's webhook admin and decodes its JSON answer.
func adminCall(ctx context.Context, server, region, method, path string, body []byte, out any) error {
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("AWS credentials: %w", err)
	}
	if region == "" {
		region = cfg.Region
	}
	if region == "" {
		region = "us-east-1"
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("AWS credentials: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(server, "/")+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "ivs", region, time.Now()); err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(data, &e)
		return fmt.Errorf("%s %s: %s %s", method, path, resp.Status, e.Message)
	}
	return json.Unmarshal(data, out)
}
