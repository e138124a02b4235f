package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/openstage/openstage/internal/store/teststore"
)

// TestTwoNodesOnePostgres runs two openstage processes on one PostgreSQL database, each with its own data
// dir: what one creates the other sees and changes, and they sign participant tokens with the one key kept
// in the database, so each accepts the other's.
func TestTwoNodesOnePostgres(t *testing.T) {
	dsn := teststore.PostgresDSN(t) // skips without OPENSTAGE_TEST_DATABASE
	dirA, dirB := t.TempDir(), t.TempDir()
	a := start(t, dirA, "--database", dsn)
	b := start(t, dirB, "--database", dsn)
	ca, cb := a.client(), b.client()
	ctx := context.Background()

	out, err := ca.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String("made-on-a"), Tags: map[string]string{"node": "a"}})
	if err != nil {
		t.Fatal(err)
	}
	arn := out.Stage.Arn
	got, err := cb.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: arn})
	if err != nil || *got.Stage.Name != "made-on-a" || got.Stage.Tags["node"] != "a" {
		t.Fatalf("GetStage on b: %+v, %v", got, err)
	}
	if _, err := cb.UpdateStage(ctx, &ivsrealtime.UpdateStageInput{Arn: arn, Name: aws.String("renamed-on-b")}); err != nil {
		t.Fatal(err)
	}
	if _, err := cb.TagResource(ctx, &ivsrealtime.TagResourceInput{ResourceArn: arn, Tags: map[string]string{"edited": "b"}}); err != nil {
		t.Fatal(err)
	}
	list, err := cb.ListStages(ctx, &ivsrealtime.ListStagesInput{})
	if err != nil || len(list.Stages) != 1 || *list.Stages[0].Arn != *arn {
		t.Fatalf("ListStages on b: %+v, %v", list, err)
	}
	got, err = ca.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: arn})
	if err != nil || *got.Stage.Name != "renamed-on-b" || got.Stage.Tags["edited"] != "b" {
		t.Fatalf("GetStage on a after b's changes: %+v, %v", got, err)
	}
	// A nextToken made by one node pages on the other (its key derives from the shared signing key).
	for range 2 {
		if _, err := ca.CreateStage(ctx, &ivsrealtime.CreateStageInput{}); err != nil {
			t.Fatal(err)
		}
	}
	page, err := ca.ListStages(ctx, &ivsrealtime.ListStagesInput{MaxResults: aws.Int32(2)})
	if err != nil || page.NextToken == nil {
		t.Fatalf("ListStages on a: %+v, %v", page, err)
	}
	if rest, err := cb.ListStages(ctx, &ivsrealtime.ListStagesInput{MaxResults: aws.Int32(2), NextToken: page.NextToken}); err != nil || len(rest.Stages) != 1 {
		t.Fatalf("a's nextToken on b: %+v, %v", rest, err)
	}

	// Tokens: the same signing key on both nodes, from the database.
	tokA, err := ca.CreateParticipantToken(ctx, &ivsrealtime.CreateParticipantTokenInput{StageArn: arn,
		Capabilities: []types.ParticipantTokenCapability{types.ParticipantTokenCapabilityPublish}})
	if err != nil {
		t.Fatal(err)
	}
	tokB, err := cb.CreateParticipantToken(ctx, &ivsrealtime.CreateParticipantTokenInput{StageArn: arn,
		Capabilities: []types.ParticipantTokenCapability{types.ParticipantTokenCapabilityPublish}})
	if err != nil {
		t.Fatal(err)
	}
	kidA, kidB := kid(t, *tokA.ParticipantToken.Token), kid(t, *tokB.ParticipantToken.Token)
	if kidA == "" || kidA != kidB {
		t.Fatalf("node a signs with key %q, node b with %q", kidA, kidB)
	}
	for _, dir := range []string{dirA, dirB} {
		if _, err := os.Stat(filepath.Join(dir, "token-signing-key.pem")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("a signing key file in the data dir %s: %v", dir, err)
		}
	}
	// Each node's WHIP endpoint authenticates the other's token: an accepted token gets as far as the
	// body (415: not an SDP offer), a rejected one is turned away first (401).
	whip := func(p *proc, tok string) int {
		t.Helper()
		req, _ := http.NewRequest("POST", p.url+"/whip", strings.NewReader("not sdp"))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "text/plain")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := whip(b, *tokA.ParticipantToken.Token); s != http.StatusUnsupportedMediaType {
		t.Fatalf("node b answers a's token with %d, want 415 (token accepted, body refused)", s)
	}
	if s := whip(a, *tokB.ParticipantToken.Token); s != http.StatusUnsupportedMediaType {
		t.Fatalf("node a answers b's token with %d, want 415 (token accepted, body refused)", s)
	}
	forged, sig := *tokA.ParticipantToken.Token, "AAAA"
	if strings.HasSuffix(forged, sig) {
		sig = "BBBB"
	}
	forged = forged[:len(forged)-len(sig)] + sig // the same claims, another signature
	if s := whip(b, forged); s != http.StatusUnauthorized {
		t.Fatalf("node b answers a token with a bad signature with %d, want 401", s)
	}

	if _, err := cb.DeleteStage(ctx, &ivsrealtime.DeleteStageInput{Arn: arn}); err != nil {
		t.Fatal(err)
	}
	var nf *types.ResourceNotFoundException
	if _, err := ca.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: arn}); !errors.As(err, &nf) {
		t.Fatalf("GetStage on a after b deleted the stage: %v", err)
	}
}

// kid returns the key id in a JWT's header.
func kid(t *testing.T, jwt string) string {
	t.Helper()
	head, _, _ := strings.Cut(jwt, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ Kid string }
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}
