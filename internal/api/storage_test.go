package api_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/stage"
)

var storageARN = regexp.MustCompile(`^arn:aws:ivs:us-east-1:123456789012:storage-configuration/[a-zA-Z0-9]{12}$`)

// createStorage makes a storage configuration a millisecond after the previous one (the clock is fake), so
// that creation orders the list.
func (h *harness) createStorage(name, bucketName string) *types.StorageConfiguration {
	h.t.Helper()
	h.clk.Advance(time.Millisecond)
	out, err := h.client.CreateStorageConfiguration(h.ctx, &ivsrealtime.CreateStorageConfigurationInput{
		Name: aws.String(name), S3: &types.S3StorageConfiguration{BucketName: aws.String(bucketName)}})
	if err != nil {
		h.t.Fatal(err)
	}
	return out.StorageConfiguration
}

func TestStorageConfigurationsThroughTheSDK(t *testing.T) {
	h := newHarness(t, opts{})
	out, err := h.client.CreateStorageConfiguration(h.ctx, &ivsrealtime.CreateStorageConfigurationInput{
		Name: aws.String("vod_archive-1"), S3: &types.S3StorageConfiguration{BucketName: aws.String("my-recordings.v1")},
		Tags: map[string]string{"team": "video"},
	})
	if err != nil {
		t.Fatal(err)
	}
	sc := out.StorageConfiguration
	if !storageARN.MatchString(aws.ToString(sc.Arn)) || aws.ToString(sc.Name) != "vod_archive-1" ||
		aws.ToString(sc.S3.BucketName) != "my-recordings.v1" || sc.Tags["team"] != "video" {
		t.Fatalf("created %+v", sc)
	}
	// The bucket is a directory of the data dir, made now.
	if fi, err := os.Stat(filepath.Join(h.buckets.Root(), "my-recordings.v1")); err != nil || !fi.IsDir() {
		t.Fatalf("bucket directory: %v", err)
	}
	got, err := h.client.GetStorageConfiguration(h.ctx, &ivsrealtime.GetStorageConfigurationInput{Arn: sc.Arn})
	if err != nil || aws.ToString(got.StorageConfiguration.Arn) != aws.ToString(sc.Arn) ||
		aws.ToString(got.StorageConfiguration.S3.BucketName) != "my-recordings.v1" || got.StorageConfiguration.Tags["team"] != "video" {
		t.Fatalf("get %+v %v", got, err)
	}

	// Tags, through the tag operations.
	if _, err := h.client.TagResource(h.ctx, &ivsrealtime.TagResourceInput{ResourceArn: sc.Arn, Tags: map[string]string{"env": "dev"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.UntagResource(h.ctx, &ivsrealtime.UntagResourceInput{ResourceArn: sc.Arn, TagKeys: []string{"team"}}); err != nil {
		t.Fatal(err)
	}
	tags, err := h.client.ListTagsForResource(h.ctx, &ivsrealtime.ListTagsForResourceInput{ResourceArn: sc.Arn})
	if err != nil || len(tags.Tags) != 1 || tags.Tags["env"] != "dev" {
		t.Fatalf("tags %+v %v", tags, err)
	}

	// An unnamed one; several may name one bucket.
	unnamed := h.createStorage("", "my-recordings.v1")
	if aws.ToString(unnamed.Name) != "" || unnamed.Tags == nil {
		t.Fatalf("unnamed %+v", unnamed)
	}

	// Refused: names S3 does not allow (the model's pattern lets ".." through), and a malformed bucket.
	for _, bad := range []struct{ bucket, msg string }{{"...", "not a valid S3 bucket name"}, {"-ab", "not a valid S3 bucket name"},
		{"192.168.1.1", "not a valid S3 bucket name"}, {"Upper", "bucketName"}, {"ab", "bucketName"}} {
		_, err := h.client.CreateStorageConfiguration(h.ctx, &ivsrealtime.CreateStorageConfigurationInput{
			S3: &types.S3StorageConfiguration{BucketName: aws.String(bad.bucket)}})
		var ve *types.ValidationException
		if !errors.As(err, &ve) || !strings.Contains(aws.ToString(ve.ExceptionMessage), bad.msg) {
			t.Fatalf("bucket %q: %v", bad.bucket, err)
		}
	}
	if entries, _ := os.ReadDir(h.buckets.Root()); len(entries) != 2 { // the bucket and Dir's temporary directory
		t.Fatalf("refused buckets left directories: %v", entries)
	}

	// IVS's quota: 5 storage configurations.
	var arns []string
	arns = append(arns, aws.ToString(sc.Arn), aws.ToString(unnamed.Arn))
	for i := range 3 {
		arns = append(arns, aws.ToString(h.createStorage("n"+string(rune('a'+i)), "other-bucket").Arn))
	}
	_, err = h.client.CreateStorageConfiguration(h.ctx, &ivsrealtime.CreateStorageConfigurationInput{S3: &types.S3StorageConfiguration{BucketName: aws.String("other-bucket")}})
	var qe *types.ServiceQuotaExceededException
	if !errors.As(err, &qe) {
		t.Fatalf("a sixth storage configuration: %v", err)
	}

	// ListStorageConfigurations pages them in creation order, as the SDK's paginator reads them.
	var listed []string
	pages := ivsrealtime.NewListStorageConfigurationsPaginator(h.client, &ivsrealtime.ListStorageConfigurationsInput{MaxResults: aws.Int32(2)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(h.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.StorageConfigurations) > 2 {
			t.Fatalf("page of %d", len(page.StorageConfigurations))
		}
		for _, c := range page.StorageConfigurations {
			listed = append(listed, aws.ToString(c.Arn))
			if aws.ToString(c.Arn) == aws.ToString(sc.Arn) && (aws.ToString(c.S3.BucketName) != "my-recordings.v1" || c.Tags["env"] != "dev") {
				t.Fatalf("summary %+v", c)
			}
		}
	}
	if !slices.Equal(listed, arns) {
		t.Fatalf("listed %v\nwant   %v", listed, arns)
	}
	// A nextToken is bound to this list.
	first, err := h.client.ListStorageConfigurations(h.ctx, &ivsrealtime.ListStorageConfigurationsInput{MaxResults: aws.Int32(1)})
	if err != nil || first.NextToken == nil {
		t.Fatalf("first page %+v %v", first, err)
	}
	var ve *types.ValidationException
	if _, err := h.client.ListStages(h.ctx, &ivsrealtime.ListStagesInput{NextToken: first.NextToken}); !errors.As(err, &ve) {
		t.Fatalf("ListStages with a ListStorageConfigurations nextToken: %v", err)
	}

	// Delete; then it is gone for every operation.
	if _, err := h.client.DeleteStorageConfiguration(h.ctx, &ivsrealtime.DeleteStorageConfigurationInput{Arn: sc.Arn}); err != nil {
		t.Fatal(err)
	}
	var nf *types.ResourceNotFoundException
	if _, err := h.client.GetStorageConfiguration(h.ctx, &ivsrealtime.GetStorageConfigurationInput{Arn: sc.Arn}); !errors.As(err, &nf) {
		t.Fatalf("get after delete: %v", err)
	}
	if _, err := h.client.DeleteStorageConfiguration(h.ctx, &ivsrealtime.DeleteStorageConfigurationInput{Arn: sc.Arn}); !errors.As(err, &nf) {
		t.Fatalf("delete after delete: %v", err)
	}
	if _, err := h.client.ListTagsForResource(h.ctx, &ivsrealtime.ListTagsForResourceInput{ResourceArn: sc.Arn}); !errors.As(err, &nf) {
		t.Fatalf("tags after delete: %v", err)
	}
	// The bucket and what it holds stay: they are the user's.
	if _, err := os.Stat(filepath.Join(h.buckets.Root(), "my-recordings.v1")); err != nil {
		t.Fatal(err)
	}
	for _, arn := range []string{"arn:aws:ivs:us-east-1:123456789012:storage-configuration/nope", "arn:aws:ivs:eu-west-1:123456789012:storage-configuration/" + ivs.LastSegment(arns[1])} {
		if _, err := h.client.GetStorageConfiguration(h.ctx, &ivsrealtime.GetStorageConfigurationInput{Arn: aws.String(arn)}); !errors.As(err, &nf) {
			t.Fatalf("get %s: %v", arn, err)
		}
	}
	// A freed quota place can be taken again.
	h.createStorage("again", "other-bucket")
}

// wantRecording checks a stage's recording configuration, member by member, against want with the ARN arn.
func wantRecording(t *testing.T, what string, got *types.AutoParticipantRecordingConfiguration, arn string, want types.AutoParticipantRecordingConfiguration) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: no autoParticipantRecordingConfiguration", what)
	}
	g, _ := json.Marshal(got)
	want.StorageConfigurationArn = aws.String(arn)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Fatalf("%s:\n got  %s\n want %s", what, g, w)
	}
}

// defaults is AutoParticipantRecordingConfiguration with the model's documented defaults: AUDIO_VIDEO,
// thumbnails DISABLED every 60 s to SEQUENTIAL, no reconnect window, 6 s segments, replicas recorded.
func defaults() types.AutoParticipantRecordingConfiguration {
	return types.AutoParticipantRecordingConfiguration{
		MediaTypes: []types.ParticipantRecordingMediaType{types.ParticipantRecordingMediaTypeAudioVideo},
		ThumbnailConfiguration: &types.ParticipantThumbnailConfiguration{
			RecordingMode: types.ThumbnailRecordingModeDisabled, TargetIntervalSeconds: aws.Int32(60),
			Storage: []types.ThumbnailStorageType{types.ThumbnailStorageTypeSequential},
		},
		HlsConfiguration:          &types.ParticipantRecordingHlsConfiguration{TargetSegmentDurationSeconds: aws.Int32(6)},
		RecordParticipantReplicas: true,
	}
}

func TestStageRecordingConfigurationThroughTheSDK(t *testing.T) {
	h := newHarness(t, opts{})
	sc := h.createStorage("rec", "stage-recordings")
	arn := aws.ToString(sc.Arn)

	// A stage that does not record shows "" and the defaults; so does the one just created with only an ARN
	// (with that ARN).
	plain := h.createStage("plain")
	wantRecording(t, "stage without recording", plain.AutoParticipantRecordingConfiguration, "", defaults())
	out, err := h.client.CreateStage(h.ctx, &ivsrealtime.CreateStageInput{Name: aws.String("rec"),
		AutoParticipantRecordingConfiguration: &types.AutoParticipantRecordingConfiguration{StorageConfigurationArn: sc.Arn}})
	if err != nil {
		t.Fatal(err)
	}
	st := out.Stage
	wantRecording(t, "CreateStage with only an ARN", st.AutoParticipantRecordingConfiguration, arn, defaults())
	got, err := h.client.GetStage(h.ctx, &ivsrealtime.GetStageInput{Arn: st.Arn})
	if err != nil {
		t.Fatal(err)
	}
	wantRecording(t, "GetStage", got.Stage.AutoParticipantRecordingConfiguration, arn, defaults())

	// Every member set, through UpdateStage. recordParticipantReplicas false cannot be sent by the Go SDK
	// (a non-boxed boolean whose zero it omits), so that request is written by hand.
	full := types.AutoParticipantRecordingConfiguration{
		MediaTypes: []types.ParticipantRecordingMediaType{types.ParticipantRecordingMediaTypeAudioOnly},
		ThumbnailConfiguration: &types.ParticipantThumbnailConfiguration{
			RecordingMode: types.ThumbnailRecordingModeInterval, TargetIntervalSeconds: aws.Int32(30),
			Storage: []types.ThumbnailStorageType{types.ThumbnailStorageTypeSequential, types.ThumbnailStorageTypeLatest},
		},
		RecordingReconnectWindowSeconds: 120,
		HlsConfiguration:                &types.ParticipantRecordingHlsConfiguration{TargetSegmentDurationSeconds: aws.Int32(2)},
	}
	body, _ := json.Marshal(map[string]any{"arn": aws.ToString(st.Arn), "autoParticipantRecordingConfiguration": map[string]any{
		"storageConfigurationArn": arn, "mediaTypes": []string{"AUDIO_ONLY"},
		"thumbnailConfiguration":          map[string]any{"recordingMode": "INTERVAL", "targetIntervalSeconds": 30, "storage": []string{"LATEST", "SEQUENTIAL"}},
		"recordingReconnectWindowSeconds": 120, "hlsConfiguration": map[string]any{"targetSegmentDurationSeconds": 2},
		"recordParticipantReplicas": false,
	}})
	resp, raw := h.raw("POST", "/UpdateStage", body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("UpdateStage: %d %s", resp.StatusCode, raw)
	}
	got, err = h.client.GetStage(h.ctx, &ivsrealtime.GetStageInput{Arn: st.Arn})
	if err != nil {
		t.Fatal(err)
	}
	wantRecording(t, "GetStage after a full configuration", got.Stage.AutoParticipantRecordingConfiguration, arn, full)

	// The same through the SDK, replicas omitted: recorded (true) again; a rename leaves the configuration.
	up, err := h.client.UpdateStage(h.ctx, &ivsrealtime.UpdateStageInput{Arn: st.Arn, AutoParticipantRecordingConfiguration: &types.AutoParticipantRecordingConfiguration{
		StorageConfigurationArn: sc.Arn, MediaTypes: full.MediaTypes, ThumbnailConfiguration: full.ThumbnailConfiguration,
		RecordingReconnectWindowSeconds: 120, HlsConfiguration: full.HlsConfiguration}})
	if err != nil {
		t.Fatal(err)
	}
	full.RecordParticipantReplicas = true
	wantRecording(t, "UpdateStage through the SDK", up.Stage.AutoParticipantRecordingConfiguration, arn, full)
	up, err = h.client.UpdateStage(h.ctx, &ivsrealtime.UpdateStageInput{Arn: st.Arn, Name: aws.String("renamed")})
	if err != nil || aws.ToString(up.Stage.Name) != "renamed" {
		t.Fatalf("rename: %+v %v", up, err)
	}
	wantRecording(t, "after a rename", up.Stage.AutoParticipantRecordingConfiguration, arn, full)
	// ListStages shows StageSummary, which has no recording configuration.
	list, err := h.client.ListStages(h.ctx, &ivsrealtime.ListStagesInput{})
	if err != nil || len(list.Stages) != 2 {
		t.Fatalf("ListStages %+v %v", list, err)
	}

	// A storage configuration that does not exist is refused, and the stage keeps what it had.
	var ve *types.ValidationException
	for _, missing := range []string{"arn:aws:ivs:us-east-1:123456789012:storage-configuration/AAAAAAAAAAAA",
		"arn:aws:ivs:us-west-2:123456789012:storage-configuration/" + ivs.LastSegment(arn)} {
		_, err = h.client.UpdateStage(h.ctx, &ivsrealtime.UpdateStageInput{Arn: st.Arn,
			AutoParticipantRecordingConfiguration: &types.AutoParticipantRecordingConfiguration{StorageConfigurationArn: aws.String(missing)}})
		if !errors.As(err, &ve) || !strings.Contains(aws.ToString(ve.ExceptionMessage), "does not exist") {
			t.Fatalf("UpdateStage to %s: %v", missing, err)
		}
	}
	got, err = h.client.GetStage(h.ctx, &ivsrealtime.GetStageInput{Arn: st.Arn})
	if err != nil {
		t.Fatal(err)
	}
	wantRecording(t, "after refused updates", got.Stage.AutoParticipantRecordingConfiguration, arn, full)

	// A storage configuration a stage names cannot be deleted.
	var ce *types.ConflictException
	_, err = h.client.DeleteStorageConfiguration(h.ctx, &ivsrealtime.DeleteStorageConfigurationInput{Arn: sc.Arn})
	if !errors.As(err, &ce) || !strings.Contains(aws.ToString(ce.ExceptionMessage), aws.ToString(st.Arn)) {
		t.Fatalf("delete of a storage configuration in use: %v", err)
	}

	// Participants of a recording stage say DISABLED until openstage records (docs/DESIGN.md §7).
	pr := h.join(aws.ToString(st.Arn), ivs.ClientInfo{}, stage.CapPublish)
	p, err := h.client.GetParticipant(h.ctx, &ivsrealtime.GetParticipantInput{StageArn: st.Arn, SessionId: aws.String(string(pr.Session)), ParticipantId: aws.String(string(pr.ID))})
	if err != nil || p.Participant.RecordingState != types.ParticipantRecordingStateDisabled {
		t.Fatalf("participant %+v %v", p, err)
	}
	_ = pr.Leave(h.ctx)

	// "" turns recording off and resets every member; the storage configuration is then free to delete.
	up, err = h.client.UpdateStage(h.ctx, &ivsrealtime.UpdateStageInput{Arn: st.Arn,
		AutoParticipantRecordingConfiguration: &types.AutoParticipantRecordingConfiguration{StorageConfigurationArn: aws.String(""),
			MediaTypes: []types.ParticipantRecordingMediaType{types.ParticipantRecordingMediaTypeAudioOnly}}})
	if err != nil {
		t.Fatal(err)
	}
	wantRecording(t, "after turning recording off", up.Stage.AutoParticipantRecordingConfiguration, "", defaults())
	if _, err := h.client.DeleteStorageConfiguration(h.ctx, &ivsrealtime.DeleteStorageConfigurationInput{Arn: sc.Arn}); err != nil {
		t.Fatalf("delete of a storage configuration no stage names: %v", err)
	}
	// A deleted stage names nothing either.
	sc2 := h.createStorage("rec2", "stage-recordings")
	out, err = h.client.CreateStage(h.ctx, &ivsrealtime.CreateStageInput{
		AutoParticipantRecordingConfiguration: &types.AutoParticipantRecordingConfiguration{StorageConfigurationArn: sc2.Arn}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.DeleteStage(h.ctx, &ivsrealtime.DeleteStageInput{Arn: out.Stage.Arn}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.DeleteStorageConfiguration(h.ctx, &ivsrealtime.DeleteStorageConfigurationInput{Arn: sc2.Arn}); err != nil {
		t.Fatalf("delete after the stage naming it was deleted: %v", err)
	}
}
