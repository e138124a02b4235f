package api_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/aws/smithy-go"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/ivstest"
	"github.com/openstage/openstage/internal/stage"
	"github.com/openstage/openstage/internal/token"
)

// errCode returns the AWS error code the SDK parsed.
func errCode(t *testing.T, err error) string {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want an AWS API error, got %v", err)
	}
	return ae.ErrorCode()
}

func (h *harness) createStage(name string) *types.Stage {
	h.t.Helper()
	out, err := h.client.CreateStage(h.ctx, &ivsrealtime.CreateStageInput{Name: aws.String(name)})
	if err != nil {
		h.t.Fatal(err)
	}
	return out.Stage
}

// join makes a participant join the stage through the domain, as the media plane will.
func (h *harness) join(arn string, client ivs.ClientInfo, caps ...stage.Capability) *stage.Presence {
	h.t.Helper()
	out, err := h.client.CreateParticipantToken(h.ctx, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(arn), UserId: aws.String("user-" + string(rune('a'+len(caps))))})
	if err != nil {
		h.t.Fatal(err)
	}
	c, err := h.domain.Authenticate(h.ctx, *out.ParticipantToken.Token)
	if err != nil {
		h.t.Fatal(err)
	}
	pr, err := h.domain.Join(h.ctx, stage.JoinRequest{Claims: c, Client: client})
	if err != nil {
		h.t.Fatal(err)
	}
	return pr
}

func TestStageLifecycleThroughTheSDK(t *testing.T) {
	h := newHarness(t, opts{})
	out, err := h.client.CreateStage(h.ctx, &ivsrealtime.CreateStageInput{
		Name: aws.String("studio-1"),
		Tags: map[string]string{"team": "video"},
		ParticipantTokenConfigurations: []types.ParticipantTokenConfiguration{
			{UserId: aws.String("host"), Duration: aws.Int32(60), Capabilities: []types.ParticipantTokenCapability{types.ParticipantTokenCapabilityPublish}, Attributes: map[string]string{"role": "host"}},
			{UserId: aws.String("viewer")},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	st := out.Stage
	if !strings.HasPrefix(*st.Arn, "arn:aws:ivs:us-east-1:123456789012:stage/") || len(ivs.LastSegment(*st.Arn)) != 12 {
		t.Fatalf("stage arn %s", *st.Arn)
	}
	if *st.Name != "studio-1" || st.Tags["team"] != "video" || st.ActiveSessionId != nil {
		t.Fatalf("stage %+v", st)
	}
	if *st.Endpoints.Whip != "http://127.0.0.1:9/whip" || *st.Endpoints.Events != "ws://127.0.0.1:9/events" {
		t.Fatalf("endpoints %+v", st.Endpoints)
	}
	if len(out.ParticipantTokens) != 2 {
		t.Fatalf("tokens %d", len(out.ParticipantTokens))
	}
	host, viewer := out.ParticipantTokens[0], out.ParticipantTokens[1]
	if *host.Duration != 60 || len(host.Capabilities) != 1 || host.Capabilities[0] != "PUBLISH" || host.Attributes["role"] != "host" {
		t.Fatalf("host token %+v", host)
	}
	if *viewer.Duration != 720 || len(viewer.Capabilities) != 2 {
		t.Fatalf("default token %+v", viewer)
	}
	if d := viewer.ExpirationTime.Sub(t0); d != 12*time.Hour {
		t.Fatalf("expirationTime %v is %v after now", viewer.ExpirationTime, d)
	}
	c, err := h.domain.Authenticate(h.ctx, *host.Token)
	if err != nil {
		t.Fatal(err)
	}
	if c.ParticipantID != *host.ParticipantId || c.UserID != "host" || !c.Capabilities.AllowPublish || c.Capabilities.AllowSubscribe ||
		c.Resource != *st.Arn || c.WhipURL != *st.Endpoints.Whip || c.Version != "1.0" {
		t.Fatalf("claims %+v", c)
	}

	got, err := h.client.GetStage(h.ctx, &ivsrealtime.GetStageInput{Arn: st.Arn})
	if err != nil || *got.Stage.Name != "studio-1" {
		t.Fatalf("get %+v %v", got, err)
	}
	up, err := h.client.UpdateStage(h.ctx, &ivsrealtime.UpdateStageInput{Arn: st.Arn, Name: aws.String("renamed")})
	if err != nil || *up.Stage.Name != "renamed" || up.Stage.Tags["team"] != "video" {
		t.Fatalf("update %+v %v", up, err)
	}
	tok, err := h.client.CreateParticipantToken(h.ctx, &ivsrealtime.CreateParticipantTokenInput{StageArn: st.Arn,
		Capabilities: []types.ParticipantTokenCapability{}})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := h.domain.Authenticate(h.ctx, *tok.ParticipantToken.Token); err != nil || c.Capabilities.AllowPublish || c.Capabilities.AllowSubscribe {
		t.Fatalf("an explicit empty capability list must give none: %+v %v", c, err)
	}

	if _, err := h.client.DeleteStage(h.ctx, &ivsrealtime.DeleteStageInput{Arn: st.Arn}); err != nil {
		t.Fatal(err)
	}
	_, err = h.client.GetStage(h.ctx, &ivsrealtime.GetStageInput{Arn: st.Arn})
	var rnf *types.ResourceNotFoundException
	if !errors.As(err, &rnf) || !strings.Contains(*rnf.ExceptionMessage, *st.Arn) {
		t.Fatalf("get after delete: %v", err)
	}
	_, err = h.client.DeleteStage(h.ctx, &ivsrealtime.DeleteStageInput{Arn: st.Arn})
	if !errors.As(err, &rnf) {
		t.Fatalf("delete twice: %v", err)
	}
	_, err = h.client.CreateParticipantToken(h.ctx, &ivsrealtime.CreateParticipantTokenInput{StageArn: st.Arn})
	if !errors.As(err, &rnf) {
		t.Fatalf("token for a deleted stage: %v", err)
	}
	if _, err := h.client.ListTagsForResource(h.ctx, &ivsrealtime.ListTagsForResourceInput{ResourceArn: st.Arn}); !errors.As(err, &rnf) {
		t.Fatalf("tags of a deleted stage: %v", err)
	}
}

func TestParticipantsSessionsAndEvents(t *testing.T) {
	h := newHarness(t, opts{})
	st := h.createStage("live")
	chrome := ivs.ClientInfo{Protocol: ivs.ProtocolWHIP, OSName: "Linux", BrowserName: "Chrome", BrowserVersion: "156.0", SDKVersion: "1.41.0"}
	pub := h.join(*st.Arn, chrome)
	sub := h.join(*st.Arn, ivs.ClientInfo{})
	h.clk.Advance(time.Second)
	if err := h.domain.StartPublish(h.ctx, pub); err != nil {
		t.Fatal(err)
	}
	if err := h.domain.StartSubscribe(h.ctx, sub, pub.ID); err != nil {
		t.Fatal(err)
	}
	if err := h.domain.StartSubscribe(h.ctx, sub, "nobody"); err == nil {
		t.Fatal("subscribe to nobody succeeded")
	}

	gs, err := h.client.GetStage(h.ctx, &ivsrealtime.GetStageInput{Arn: st.Arn})
	if err != nil || aws.ToString(gs.Stage.ActiveSessionId) != string(pub.Session) {
		t.Fatalf("activeSessionId %v %v", gs, err)
	}
	sess, err := h.client.GetStageSession(h.ctx, &ivsrealtime.GetStageSessionInput{StageArn: st.Arn, SessionId: aws.String(string(pub.Session))})
	if err != nil || !sess.StageSession.StartTime.Equal(t0) || sess.StageSession.EndTime != nil {
		t.Fatalf("session %+v %v", sess, err)
	}
	p, err := h.client.GetParticipant(h.ctx, &ivsrealtime.GetParticipantInput{StageArn: st.Arn, SessionId: aws.String(string(pub.Session)), ParticipantId: aws.String(string(pub.ID))})
	if err != nil {
		t.Fatal(err)
	}
	pp := p.Participant
	if pp.State != types.ParticipantStateConnected || !pp.Published || !pp.FirstJoinTime.Equal(t0) || aws.ToString(pp.BrowserName) != "Chrome" ||
		aws.ToString(pp.OsName) != "Linux" || aws.ToString(pp.SdkVersion) != "1.41.0" || pp.Protocol != types.ParticipantProtocolWhip ||
		pp.RecordingState != types.ParticipantRecordingStateDisabled {
		t.Fatalf("participant %+v", pp)
	}

	_ = sub.Leave(h.ctx)
	_ = pub.Leave(h.ctx)
	h.clk.Advance(11 * time.Second)

	evs, err := h.client.ListParticipantEvents(h.ctx, &ivsrealtime.ListParticipantEventsInput{StageArn: st.Arn, SessionId: aws.String(string(sub.Session)), ParticipantId: aws.String(string(sub.ID))})
	if err != nil {
		t.Fatal(err)
	}
	var seq []string
	for _, e := range evs.Events {
		if e.EventTime == nil || e.EventTime.Before(t0) {
			t.Fatalf("event time %v", e.EventTime)
		}
		seq = append(seq, ivstest.Event(e))
	}
	want := fmt.Sprintf("JOINED SUBSCRIBE_STARTED>%[1]s SUBSCRIBE_ERROR>nobody:PUBLISHER_NOT_FOUND SUBSCRIBE_STOPPED>%[1]s LEFT", pub.ID)
	if strings.Join(seq, " ") != want {
		t.Fatalf("events\n got %s\nwant %s", strings.Join(seq, " "), want)
	}

	sess, err = h.client.GetStageSession(h.ctx, &ivsrealtime.GetStageSessionInput{StageArn: st.Arn, SessionId: aws.String(string(pub.Session))})
	if err != nil || sess.StageSession.EndTime == nil {
		t.Fatalf("session after the last left and grace passed: %+v %v", sess, err)
	}
	list, err := h.client.ListParticipants(h.ctx, &ivsrealtime.ListParticipantsInput{StageArn: st.Arn, SessionId: aws.String(string(pub.Session)), FilterByPublished: true})
	if err != nil || len(list.Participants) != 1 || *list.Participants[0].ParticipantId != string(pub.ID) || list.Participants[0].State != types.ParticipantStateDisconnected {
		t.Fatalf("published filter %+v %v", list, err)
	}
	list, err = h.client.ListParticipants(h.ctx, &ivsrealtime.ListParticipantsInput{StageArn: st.Arn, SessionId: aws.String(string(pub.Session)), FilterByState: types.ParticipantStateConnected})
	if err != nil || len(list.Participants) != 0 {
		t.Fatalf("connected filter %+v %v", list, err)
	}
	list, err = h.client.ListParticipants(h.ctx, &ivsrealtime.ListParticipantsInput{StageArn: st.Arn, SessionId: aws.String("st-0000000000000")})
	if err != nil || len(list.Participants) != 0 {
		t.Fatalf("unknown session must list nothing: %+v %v", list, err)
	}
	sessions, err := h.client.ListStageSessions(h.ctx, &ivsrealtime.ListStageSessionsInput{StageArn: st.Arn})
	if err != nil || len(sessions.StageSessions) != 1 {
		t.Fatalf("sessions %+v %v", sessions, err)
	}

	var rnf *types.ResourceNotFoundException
	_, err = h.client.GetParticipant(h.ctx, &ivsrealtime.GetParticipantInput{StageArn: st.Arn, SessionId: aws.String(string(pub.Session)), ParticipantId: aws.String("nobody")})
	if !errors.As(err, &rnf) {
		t.Fatalf("unknown participant: %v", err)
	}
	_, err = h.client.GetStageSession(h.ctx, &ivsrealtime.GetStageSessionInput{StageArn: st.Arn, SessionId: aws.String("st-0000000000000")})
	if !errors.As(err, &rnf) {
		t.Fatalf("unknown session: %v", err)
	}

	// Timestamps on the wire are ISO-8601 strings with Z, never numbers.
	_, body := h.raw("POST", "/GetParticipant", []byte(fmt.Sprintf(`{"stageArn":%q,"sessionId":%q,"participantId":%q}`, *st.Arn, pub.Session, pub.ID)))
	var doc struct {
		Participant map[string]any `json:"participant"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if s, ok := doc.Participant["firstJoinTime"].(string); !ok || s != "2026-11-22T10:00:00.000Z" {
		t.Fatalf("firstJoinTime on the wire: %#v", doc.Participant["firstJoinTime"])
	}
}

func TestDisconnectParticipantThroughTheSDK(t *testing.T) {
	h := newHarness(t, opts{})
	st := h.createStage("d")
	a := h.join(*st.Arn, ivs.ClientInfo{})
	if _, err := h.client.DisconnectParticipant(h.ctx, &ivsrealtime.DisconnectParticipantInput{StageArn: st.Arn, ParticipantId: aws.String(string(a.ID)), Reason: aws.String("kicked")}); err != nil {
		t.Fatal(err)
	}
	p, err := h.client.GetParticipant(h.ctx, &ivsrealtime.GetParticipantInput{StageArn: st.Arn, SessionId: aws.String(string(a.Session)), ParticipantId: aws.String(string(a.ID))})
	if err != nil || p.Participant.State != types.ParticipantStateDisconnected {
		t.Fatalf("after disconnect %+v %v", p, err)
	}
	var rnf *types.ResourceNotFoundException
	_, err = h.client.DisconnectParticipant(h.ctx, &ivsrealtime.DisconnectParticipantInput{StageArn: aws.String("arn:aws:ivs:us-east-1:123456789012:stage/AAAAAAAAAAAA"), ParticipantId: aws.String("x")})
	if !errors.As(err, &rnf) {
		t.Fatalf("disconnect on unknown stage: %v", err)
	}
}

func TestPublicKeys(t *testing.T) {
	h := newHarness(t, opts{})
	var arns []string
	var pems []string
	for i := 0; i < 4; i++ {
		k, err := token.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		b, err := token.MarshalPublicKeyPEM(&k.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		pems = append(pems, string(b))
		h.clk.Advance(time.Millisecond) // lists are in creation order
		out, err := h.client.ImportPublicKey(h.ctx, &ivsrealtime.ImportPublicKeyInput{PublicKeyMaterial: aws.String(string(b)), Name: aws.String(fmt.Sprintf("k%d", i)), Tags: map[string]string{"n": fmt.Sprint(i)}})
		if i == 3 {
			var q *types.ServiceQuotaExceededException
			if !errors.As(err, &q) {
				t.Fatalf("4th key: %v", err)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		pk := out.PublicKey
		if !strings.HasPrefix(*pk.Arn, "arn:aws:ivs:us-east-1:123456789012:public-key/") || len(strings.Split(*pk.Fingerprint, ":")) != 16 || *pk.PublicKeyMaterial != string(b) {
			t.Fatalf("key %+v", pk)
		}
		arns = append(arns, *pk.Arn)
	}
	var conflict *types.ConflictException
	if _, err := h.client.ImportPublicKey(h.ctx, &ivsrealtime.ImportPublicKeyInput{PublicKeyMaterial: aws.String(pems[0])}); !errors.As(err, &conflict) {
		t.Fatalf("duplicate import: %v", err)
	}
	var ve *types.ValidationException
	if _, err := h.client.ImportPublicKey(h.ctx, &ivsrealtime.ImportPublicKeyInput{PublicKeyMaterial: aws.String("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----")}); !errors.As(err, &ve) {
		t.Fatalf("bad material: %v", err)
	}
	list, err := h.client.ListPublicKeys(h.ctx, &ivsrealtime.ListPublicKeysInput{MaxResults: aws.Int32(2)})
	if err != nil || len(list.PublicKeys) != 2 || list.NextToken == nil || *list.PublicKeys[0].Arn != arns[0] {
		t.Fatalf("list %+v %v", list, err)
	}
	got, err := h.client.GetPublicKey(h.ctx, &ivsrealtime.GetPublicKeyInput{Arn: aws.String(arns[1])})
	if err != nil || *got.PublicKey.Name != "k1" || got.PublicKey.Tags["n"] != "1" {
		t.Fatalf("get %+v %v", got, err)
	}
	if _, err := h.client.DeletePublicKey(h.ctx, &ivsrealtime.DeletePublicKeyInput{Arn: aws.String(arns[1])}); err != nil {
		t.Fatal(err)
	}
	var rnf *types.ResourceNotFoundException
	if _, err := h.client.GetPublicKey(h.ctx, &ivsrealtime.GetPublicKeyInput{Arn: aws.String(arns[1])}); !errors.As(err, &rnf) {
		t.Fatalf("get deleted: %v", err)
	}
	if _, err := h.client.DeletePublicKey(h.ctx, &ivsrealtime.DeletePublicKeyInput{Arn: aws.String(arns[1])}); !errors.As(err, &rnf) {
		t.Fatalf("delete deleted: %v", err)
	}
}

func TestTags(t *testing.T) {
	h := newHarness(t, opts{})
	st := h.createStage("t")
	if _, err := h.client.TagResource(h.ctx, &ivsrealtime.TagResourceInput{ResourceArn: st.Arn, Tags: map[string]string{"a": "1", "b": "2"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.UntagResource(h.ctx, &ivsrealtime.UntagResourceInput{ResourceArn: st.Arn, TagKeys: []string{"a", "zz"}}); err != nil {
		t.Fatal(err)
	}
	out, err := h.client.ListTagsForResource(h.ctx, &ivsrealtime.ListTagsForResourceInput{ResourceArn: st.Arn})
	if err != nil || len(out.Tags) != 1 || out.Tags["b"] != "2" {
		t.Fatalf("tags %+v %v", out, err)
	}
	many := map[string]string{}
	for i := 0; i < 50; i++ {
		many[fmt.Sprintf("k%02d", i)] = "v"
	}
	var ve *types.ValidationException
	if _, err := h.client.TagResource(h.ctx, &ivsrealtime.TagResourceInput{ResourceArn: st.Arn, Tags: many}); !errors.As(err, &ve) {
		t.Fatalf("51 tags after merge: %v", err)
	}
	if out, _ := h.client.ListTagsForResource(h.ctx, &ivsrealtime.ListTagsForResourceInput{ResourceArn: st.Arn}); len(out.Tags) != 1 {
		t.Fatalf("a refused TagResource changed the tags: %v", out.Tags)
	}
	var rnf *types.ResourceNotFoundException
	_, err = h.client.TagResource(h.ctx, &ivsrealtime.TagResourceInput{ResourceArn: aws.String("arn:aws:ivs:us-east-1:123456789012:stage/AAAAAAAAAAAA"), Tags: map[string]string{"a": "b"}})
	if !errors.As(err, &rnf) {
		t.Fatalf("tag unknown resource: %v", err)
	}
	_, err = h.client.ListTagsForResource(h.ctx, &ivsrealtime.ListTagsForResourceInput{ResourceArn: aws.String("arn:aws:ivs:us-east-1:123456789012:channel/AAAAAAAAAAAA")})
	if !errors.As(err, &rnf) {
		t.Fatalf("tags of a resource type openstage has not: %v", err)
	}
}

func TestQuotaOfStages(t *testing.T) {
	h := newHarness(t, opts{quotas: stage.Quotas{Stages: 2, PublicKeys: 3, PublishersPerStage: 12, SubscribersPerStage: 10}})
	h.createStage("a")
	h.createStage("b")
	_, err := h.client.CreateStage(h.ctx, &ivsrealtime.CreateStageInput{})
	var q *types.ServiceQuotaExceededException
	if !errors.As(err, &q) {
		t.Fatalf("3rd stage over a quota of 2: %v", err)
	}
	list, err := h.client.ListStages(h.ctx, &ivsrealtime.ListStagesInput{})
	if err != nil || len(list.Stages) != 2 {
		t.Fatalf("a refused CreateStage must store nothing: %+v %v", list, err)
	}
}

func TestNotSupportedAndUnknownOperations(t *testing.T) {
	h := newHarness(t, opts{})
	_, err := h.client.GetComposition(h.ctx, &ivsrealtime.GetCompositionInput{Arn: aws.String("arn:aws:ivs:us-east-1:123456789012:composition/abc")})
	var ve *types.ValidationException
	if !errors.As(err, &ve) || *ve.ExceptionMessage != "GetComposition is not supported by openstage" {
		t.Fatalf("unsupported op: %v", err)
	}
	resp, body := h.raw("POST", "/NoSuchOperation", []byte(`{}`))
	if resp.StatusCode != 404 || resp.Header.Get("x-amzn-ErrorType") != "UnknownOperationException" {
		t.Fatalf("unknown op: %d %s %s", resp.StatusCode, resp.Header, body)
	}
	resp, _ = h.raw("POST", "/ListTagsForResource", []byte(`{"resourceArn":"x"}`))
	if resp.StatusCode != 404 {
		t.Fatalf("tag op at the wrong route: %d", resp.StatusCode)
	}
}

func TestAuthentication(t *testing.T) {
	cases := []struct {
		name   string
		id     string
		secret string
		skew   time.Duration
		want   string
	}{
		{"anonymous", "", "", 0, "MissingAuthenticationTokenException"},
		{"unknown key", "AKOSNOBODY", "x", 0, "UnrecognizedClientException"},
		{"wrong secret", rootID, "wrong", 0, "InvalidSignatureException"},
		{"clock 20 minutes off", rootID, rootSecret, 20 * time.Minute, "InvalidSignatureException"},
		{"clock 10 minutes off is fine", rootID, rootSecret, 10 * time.Minute, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, opts{now: func() time.Time { return time.Now().Add(c.skew) }})
			_, err := h.clientFor(c.id, c.secret).ListStages(h.ctx, &ivsrealtime.ListStagesInput{})
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if got := errCode(t, err); got != c.want {
				t.Fatalf("got %s want %s (%v)", got, c.want, err)
			}
		})
	}
}

func TestActionRestrictedKeys(t *testing.T) {
	h := newHarness(t, opts{})
	st := h.createStage("ro")
	ro := h.clientFor(readID, readSecret)
	if _, err := ro.GetStage(h.ctx, &ivsrealtime.GetStageInput{Arn: st.Arn}); err != nil {
		t.Fatal(err)
	}
	if _, err := ro.ListStages(h.ctx, &ivsrealtime.ListStagesInput{}); err != nil {
		t.Fatal(err)
	}
	var ad *types.AccessDeniedException
	if _, err := ro.CreateStage(h.ctx, &ivsrealtime.CreateStageInput{}); !errors.As(err, &ad) {
		t.Fatalf("create with a read-only key: %v", err)
	}
	if _, err := ro.DeleteStage(h.ctx, &ivsrealtime.DeleteStageInput{Arn: st.Arn}); !errors.As(err, &ad) {
		t.Fatalf("delete with a read-only key: %v", err)
	}
	if _, err := h.client.GetStage(h.ctx, &ivsrealtime.GetStageInput{Arn: st.Arn}); err != nil {
		t.Fatalf("a denied delete removed the stage: %v", err)
	}
}

func TestValidationThroughTheSDK(t *testing.T) {
	h := newHarness(t, opts{})
	st := h.createStage("v")
	cases := []struct {
		name string
		call func() error
		msg  string
	}{
		{"arn pattern", func() error {
			_, err := h.client.GetStage(h.ctx, &ivsrealtime.GetStageInput{Arn: aws.String("xarn:aws:ivs:us-east-1:1:stage/abc")})
			return err
		}, "Member must satisfy regular expression pattern"},
		{"duration range", func() error {
			_, err := h.client.CreateParticipantToken(h.ctx, &ivsrealtime.CreateParticipantTokenInput{StageArn: st.Arn, Duration: aws.Int32(20161)})
			return err
		}, "less than or equal to 20160"},
		{"maxResults range", func() error {
			_, err := h.client.ListStages(h.ctx, &ivsrealtime.ListStagesInput{MaxResults: aws.Int32(101)})
			return err
		}, "maxResults"},
		{"explicit zero maxResults", func() error {
			_, err := h.client.ListStages(h.ctx, &ivsrealtime.ListStagesInput{MaxResults: aws.Int32(0)})
			return err
		}, "maxResults"},
		{"session id length", func() error {
			_, err := h.client.GetStageSession(h.ctx, &ivsrealtime.GetStageSessionInput{StageArn: st.Arn, SessionId: aws.String("st-short")})
			return err
		}, "sessionId"},
		{"name pattern", func() error {
			_, err := h.client.CreateStage(h.ctx, &ivsrealtime.CreateStageInput{Name: aws.String("has space")})
			return err
		}, "name"},
		{"too many token configurations", func() error {
			_, err := h.client.CreateStage(h.ctx, &ivsrealtime.CreateStageInput{ParticipantTokenConfigurations: make([]types.ParticipantTokenConfiguration, 13)})
			return err
		}, "participantTokenConfigurations"},
		{"attributes over 1 KB", func() error {
			_, err := h.client.CreateParticipantToken(h.ctx, &ivsrealtime.CreateParticipantTokenInput{StageArn: st.Arn, Attributes: map[string]string{"k": strings.Repeat("x", 1024)}})
			return err
		}, "1 KB"},
		{"two filters", func() error {
			_, err := h.client.ListParticipants(h.ctx, &ivsrealtime.ListParticipantsInput{StageArn: st.Arn, SessionId: aws.String("st-0000000000000"), FilterByPublished: true, FilterByUserId: aws.String("u")})
			return err
		}, "only one of"},
		{"forged nextToken", func() error {
			_, err := h.client.ListStages(h.ctx, &ivsrealtime.ListStagesInput{NextToken: aws.String("AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")})
			return err
		}, "nextToken"},
		{"recording to a storage configuration that does not exist", func() error {
			_, err := h.client.CreateStage(h.ctx, &ivsrealtime.CreateStageInput{AutoParticipantRecordingConfiguration: &types.AutoParticipantRecordingConfiguration{StorageConfigurationArn: aws.String("arn:aws:ivs:us-east-1:123456789012:storage-configuration/abc")}})
			return err
		}, "does not exist"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			var ve *types.ValidationException
			if !errors.As(err, &ve) {
				t.Fatalf("want ValidationException, got %v", err)
			}
			if !strings.Contains(*ve.ExceptionMessage, c.msg) {
				t.Fatalf("message %q does not mention %q", *ve.ExceptionMessage, c.msg)
			}
		})
	}
	// Nothing refused was stored.
	list, err := h.client.ListStages(h.ctx, &ivsrealtime.ListStagesInput{})
	if err != nil || len(list.Stages) != 1 {
		t.Fatalf("stages after refused requests: %+v %v", list, err)
	}
}

func TestValidationOfRawBodies(t *testing.T) {
	h := newHarness(t, opts{})
	cases := []struct {
		name, path, body, msg string
	}{
		{"malformed JSON", "/CreateStage", `{"name":`, "not valid JSON"},
		{"wrong type", "/ListStages", `{"maxResults":"10"}`, "maxResults"},
		{"fractional integer", "/ListStages", `{"maxResults":1.5}`, "maxResults"},
		{"missing required (JS sends {})", "/GetStage", `{}`, "arn"},
		{"array body", "/ListStages", `[]`, ""},
		{"oversized body", "/CreateStage", `{"name":"` + strings.Repeat("a", 1<<20) + `"}`, "larger than"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := h.raw("POST", c.path, []byte(c.body))
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("x-amzn-ErrorType") != "ValidationException" {
				t.Fatalf("%d %s %s", resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), body)
			}
			var e struct{ ExceptionMessage, Message string }
			if err := json.Unmarshal(body, &e); err != nil || e.ExceptionMessage == "" || e.Message != e.ExceptionMessage {
				t.Fatalf("error body %s", body)
			}
			if !strings.Contains(e.ExceptionMessage, c.msg) {
				t.Fatalf("message %q does not mention %q", e.ExceptionMessage, c.msg)
			}
			if resp.Header.Get("x-amzn-RequestId") == "" {
				t.Fatal("no request id")
			}
		})
	}
	// Unknown fields are ignored.
	resp, body := h.raw("POST", "/ListStages", []byte(`{"surprise":1}`))
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"stages":[]`) {
		t.Fatalf("unknown field: %d %s", resp.StatusCode, body)
	}
}
