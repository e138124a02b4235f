package api

import (
	"context"

	"github.com/openstage/openstage/internal/api/validate"
	"github.com/openstage/openstage/internal/awserr"
	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/stage"
	"github.com/openstage/openstage/internal/store"
)

type handleFunc func(ctx context.Context, h *Handler, r *request) (any, error)

// op decodes and validates the request against the model's input shape of r.op, then calls f.
func op[In any](f func(ctx context.Context, h *Handler, in *In) (any, error)) handleFunc {
	return func(ctx context.Context, h *Handler, r *request) (any, error) {
		var in In
		if err := validate.Decode(r.op, r.body, r.bound, &in); err != nil {
			return nil, err
		}
		return f(ctx, h, &in)
	}
}

// operations are the supported operations; any other operation of the model is answered "not supported".
var operations = map[string]handleFunc{
	"CreateStage":            op(createStage),
	"GetStage":               op(getStage),
	"UpdateStage":            op(updateStage),
	"DeleteStage":            op(deleteStage),
	"ListStages":             op(listStages),
	"CreateParticipantToken": op(createParticipantToken),
	"DisconnectParticipant":  op(disconnectParticipant),
	"GetStageSession":        op(getStageSession),
	"ListStageSessions":      op(listStageSessions),
	"GetParticipant":         op(getParticipant),
	"ListParticipants":       op(listParticipants),
	"ListParticipantEvents":  op(listParticipantEvents),
	"ImportPublicKey":        op(importPublicKey),
	"GetPublicKey":           op(getPublicKey),
	"ListPublicKeys":         op(listPublicKeys),
	"DeletePublicKey":        op(deletePublicKey),
	"TagResource":            op(tagResource),
	"UntagResource":          op(untagResource),
	"ListTagsForResource":    op(listTagsForResource),

	"CreateStorageConfiguration": op(createStorageConfiguration),
	"GetStorageConfiguration":    op(getStorageConfiguration),
	"ListStorageConfigurations":  op(listStorageConfigurations),
	"DeleteStorageConfiguration": op(deleteStorageConfiguration),
}

type empty struct{}

// Input shapes. Validation has already enforced the model's rules when these are filled.

type tokenConfig struct {
	Duration     *int              `json:"duration"`
	UserID       string            `json:"userId"`
	Attributes   map[string]string `json:"attributes"`
	Capabilities *[]string         `json:"capabilities"` // absent: the default; [] : none
}

func (c tokenConfig) spec() stage.TokenSpec {
	sp := stage.TokenSpec{Duration: c.Duration, UserID: c.UserID, Attributes: c.Attributes}
	if c.Capabilities != nil {
		sp.Capabilities = []stage.Capability{}
		seen := map[string]bool{}
		for _, cp := range *c.Capabilities {
			if !seen[cp] {
				seen[cp] = true
				sp.Capabilities = append(sp.Capabilities, stage.Capability(cp))
			}
		}
	}
	return sp
}

// recordingIn is the model's AutoParticipantRecordingConfiguration. Absent members take their defaults.
type recordingIn struct {
	StorageConfigurationARN string   `json:"storageConfigurationArn"`
	MediaTypes              []string `json:"mediaTypes"` // at most 1 (ParticipantRecordingMediaTypeList)
	ThumbnailConfiguration  *struct {
		TargetIntervalSeconds *int     `json:"targetIntervalSeconds"`
		Storage               []string `json:"storage"`
		RecordingMode         string   `json:"recordingMode"`
	} `json:"thumbnailConfiguration"`
	RecordingReconnectWindowSeconds int `json:"recordingReconnectWindowSeconds"`
	HLSConfiguration                *struct {
		TargetSegmentDurationSeconds *int `json:"targetSegmentDurationSeconds"`
	} `json:"hlsConfiguration"`
	// RecordParticipantReplicas is a non-boxed boolean whose documented default is true: the Go SDK omits
	// false, so absent must mean true.
	RecordParticipantReplicas *bool `json:"recordParticipantReplicas"`
}

func (r *recordingIn) spec() *stage.RecordingSpec {
	if r == nil {
		return nil
	}
	sp := &stage.RecordingSpec{StorageConfigurationARN: r.StorageConfigurationARN}
	c := &sp.Config
	if len(r.MediaTypes) > 0 {
		c.MediaType = ivs.RecordingMediaType(r.MediaTypes[0])
	}
	if t := r.ThumbnailConfiguration; t != nil {
		c.ThumbnailMode = ivs.ThumbnailMode(t.RecordingMode)
		if t.TargetIntervalSeconds != nil {
			c.ThumbnailInterval = *t.TargetIntervalSeconds
		}
		for _, st := range t.Storage {
			switch st {
			case "SEQUENTIAL":
				c.ThumbnailSequential = true
			case "LATEST":
				c.ThumbnailLatest = true
			}
		}
	}
	c.ReconnectWindowSeconds = r.RecordingReconnectWindowSeconds
	if r.HLSConfiguration != nil && r.HLSConfiguration.TargetSegmentDurationSeconds != nil {
		c.TargetSegmentSeconds = *r.HLSConfiguration.TargetSegmentDurationSeconds
	}
	c.SkipReplicas = r.RecordParticipantReplicas != nil && !*r.RecordParticipantReplicas
	return sp
}

type createStageIn struct {
	Name                                  *string           `json:"name"`
	Tags                                  map[string]string `json:"tags"`
	ParticipantTokenConfigurations        []tokenConfig     `json:"participantTokenConfigurations"`
	AutoParticipantRecordingConfiguration *recordingIn      `json:"autoParticipantRecordingConfiguration"`
}

func createStage(ctx context.Context, h *Handler, in *createStageIn) (any, error) {
	specs := make([]stage.TokenSpec, len(in.ParticipantTokenConfigurations))
	for i, c := range in.ParticipantTokenConfigurations {
		specs[i] = c.spec()
	}
	name := ""
	if in.Name != nil {
		name = *in.Name
	}
	st, toks, err := h.domain.CreateStageWith(ctx, name, in.Tags, specs, in.AutoParticipantRecordingConfiguration.spec())
	if err != nil {
		return nil, err
	}
	out := struct {
		Stage             wireStage   `json:"stage"`
		ParticipantTokens []wireToken `json:"participantTokens"`
	}{Stage: h.stageOut(st), ParticipantTokens: make([]wireToken, len(toks))}
	for i, t := range toks {
		out.ParticipantTokens[i] = tokenOut(t)
	}
	return out, nil
}

type arnIn struct {
	ARN string `json:"arn"`
}

func getStage(ctx context.Context, h *Handler, in *arnIn) (any, error) {
	st, err := h.domain.GetStage(ctx, in.ARN)
	if err != nil {
		return nil, err
	}
	return struct {
		Stage wireStage `json:"stage"`
	}{h.stageOut(st)}, nil
}

type updateStageIn struct {
	ARN                                   string       `json:"arn"`
	Name                                  *string      `json:"name"`
	AutoParticipantRecordingConfiguration *recordingIn `json:"autoParticipantRecordingConfiguration"`
}

func updateStage(ctx context.Context, h *Handler, in *updateStageIn) (any, error) {
	st, err := h.domain.UpdateStageWith(ctx, in.ARN, in.Name, in.AutoParticipantRecordingConfiguration.spec())
	if err != nil {
		return nil, err
	}
	return struct {
		Stage wireStage `json:"stage"`
	}{h.stageOut(st)}, nil
}

func deleteStage(ctx context.Context, h *Handler, in *arnIn) (any, error) {
	return empty{}, h.domain.DeleteStage(ctx, in.ARN)
}

type pageIn struct {
	MaxResults *int32  `json:"maxResults"`
	NextToken  *string `json:"nextToken"`
}

// createdCursor is the keyset of lists ordered by creation.
func stageCursor(v stage.StageView) store.Cursor {
	return store.Cursor{Time: v.CreatedAt, ID: string(v.ID)}
}

func listStages(ctx context.Context, h *Handler, in *pageIn) (any, error) {
	const op = "ListStages"
	p, n, err := h.pager.page(op, nil, in.MaxResults, in.NextToken)
	if err != nil {
		return nil, err
	}
	rows, err := h.domain.ListStages(ctx, p)
	if err != nil {
		return nil, err
	}
	rows, next := trim(h.pager, op, nil, rows, n, stageCursor)
	out := struct {
		Stages    []wireStage `json:"stages"`
		NextToken *string     `json:"nextToken,omitempty"`
	}{Stages: make([]wireStage, len(rows)), NextToken: next}
	for i, v := range rows {
		out.Stages[i] = stageSummaryOut(v)
	}
	return out, nil
}

type createTokenIn struct {
	StageARN string `json:"stageArn"`
	tokenConfig
}

func createParticipantToken(ctx context.Context, h *Handler, in *createTokenIn) (any, error) {
	t, err := h.domain.CreateParticipantToken(ctx, in.StageARN, in.spec())
	if err != nil {
		return nil, err
	}
	return struct {
		ParticipantToken wireToken `json:"participantToken"`
	}{tokenOut(t)}, nil
}

type disconnectIn struct {
	StageARN      string `json:"stageArn"`
	ParticipantID string `json:"participantId"`
	Reason        string `json:"reason"`
}

func disconnectParticipant(ctx context.Context, h *Handler, in *disconnectIn) (any, error) {
	return empty{}, h.domain.DisconnectParticipant(ctx, in.StageARN, ivs.ParticipantID(in.ParticipantID), in.Reason)
}

type sessionIn struct {
	StageARN  string `json:"stageArn"`
	SessionID string `json:"sessionId"`
}

func getStageSession(ctx context.Context, h *Handler, in *sessionIn) (any, error) {
	s, err := h.domain.GetSession(ctx, in.StageARN, ivs.SessionID(in.SessionID))
	if err != nil {
		return nil, err
	}
	return struct {
		StageSession wireSession `json:"stageSession"`
	}{sessionOut(s)}, nil
}

type listSessionsIn struct {
	StageARN string `json:"stageArn"`
	pageIn
}

func listStageSessions(ctx context.Context, h *Handler, in *listSessionsIn) (any, error) {
	const op = "ListStageSessions"
	q := struct{ StageARN string }{in.StageARN}
	p, n, err := h.pager.page(op, q, in.MaxResults, in.NextToken)
	if err != nil {
		return nil, err
	}
	rows, err := h.domain.ListSessions(ctx, in.StageARN, p)
	if err != nil {
		return nil, err
	}
	rows, next := trim(h.pager, op, q, rows, n, func(s ivs.Session) store.Cursor {
		return store.Cursor{Time: s.StartTime, ID: string(s.ID)}
	})
	out := struct {
		StageSessions []wireSession `json:"stageSessions"`
		NextToken     *string       `json:"nextToken,omitempty"`
	}{StageSessions: make([]wireSession, len(rows)), NextToken: next}
	for i, s := range rows {
		out.StageSessions[i] = sessionOut(s)
	}
	return out, nil
}

type participantIn struct {
	StageARN      string `json:"stageArn"`
	SessionID     string `json:"sessionId"`
	ParticipantID string `json:"participantId"`
}

func getParticipant(ctx context.Context, h *Handler, in *participantIn) (any, error) {
	p, err := h.domain.GetParticipant(ctx, in.StageARN, ivs.SessionID(in.SessionID), ivs.ParticipantID(in.ParticipantID))
	if err != nil {
		return nil, err
	}
	return getParticipantOut{p}, nil // {"participant": wireParticipant}
}

type listParticipantsIn struct {
	StageARN               string  `json:"stageArn"`
	SessionID              string  `json:"sessionId"`
	FilterByUserID         *string `json:"filterByUserId"`
	FilterByPublished      *bool   `json:"filterByPublished"`
	FilterByState          string  `json:"filterByState"`
	FilterByRecordingState string  `json:"filterByRecordingState"`
	pageIn
}

func listParticipants(ctx context.Context, h *Handler, in *listParticipantsIn) (any, error) {
	const op = "ListParticipants"
	filters := 0
	for _, set := range []bool{in.FilterByUserID != nil, in.FilterByPublished != nil, in.FilterByState != "", in.FilterByRecordingState != ""} {
		if set {
			filters++
		}
	}
	if filters > 1 {
		return nil, awserr.New(awserr.Validation, "only one of filterByUserId, filterByPublished, filterByState and filterByRecordingState may be given; this request has %d", filters)
	}
	q := stage.ParticipantQuery{
		ParticipantFilter: store.ParticipantFilter{UserID: in.FilterByUserID, Published: in.FilterByPublished, State: ivs.ParticipantState(in.FilterByState)},
		RecordingState:    in.FilterByRecordingState,
	}
	bind := struct {
		StageARN, SessionID string
		Q                   stage.ParticipantQuery
	}{in.StageARN, in.SessionID, q}
	p, n, err := h.pager.page(op, bind, in.MaxResults, in.NextToken)
	if err != nil {
		return nil, err
	}
	rows, err := h.domain.ListParticipants(ctx, in.StageARN, ivs.SessionID(in.SessionID), q, p)
	if err != nil {
		return nil, err
	}
	rows, next := trim(h.pager, op, bind, rows, n, func(p store.ParticipantSummary) store.Cursor {
		return store.Cursor{Time: p.FirstJoinTime, ID: string(p.ID)}
	})
	return participantsOut{rows, next}, nil // {"participants": [wireParticipantSummary...], "nextToken"}
}

type listEventsIn struct {
	participantIn
	pageIn
}

func listParticipantEvents(ctx context.Context, h *Handler, in *listEventsIn) (any, error) {
	const op = "ListParticipantEvents"
	q := in.participantIn
	p, n, err := h.pager.page(op, q, in.MaxResults, in.NextToken)
	if err != nil {
		return nil, err
	}
	rows, err := h.domain.ListEvents(ctx, in.StageARN, ivs.SessionID(in.SessionID), ivs.ParticipantID(in.ParticipantID), p)
	if err != nil {
		return nil, err
	}
	rows, next := trim(h.pager, op, q, rows, n, func(e ivs.Event) store.Cursor { return store.Cursor{Seq: e.Seq} })
	return eventsOut{rows, next}, nil // {"events": [wireEvent...], "nextToken"}
}

type importKeyIn struct {
	PublicKeyMaterial string            `json:"publicKeyMaterial"`
	Name              string            `json:"name"`
	Tags              map[string]string `json:"tags"`
}

func importPublicKey(ctx context.Context, h *Handler, in *importKeyIn) (any, error) {
	k, err := h.domain.ImportPublicKey(ctx, in.PublicKeyMaterial, in.Name, in.Tags)
	if err != nil {
		return nil, err
	}
	return struct {
		PublicKey wirePublicKey `json:"publicKey"`
	}{publicKeyOut(k)}, nil
}

func getPublicKey(ctx context.Context, h *Handler, in *arnIn) (any, error) {
	k, err := h.domain.GetPublicKey(ctx, in.ARN)
	if err != nil {
		return nil, err
	}
	return struct {
		PublicKey wirePublicKey `json:"publicKey"`
	}{publicKeyOut(k)}, nil
}

func listPublicKeys(ctx context.Context, h *Handler, in *pageIn) (any, error) {
	const op = "ListPublicKeys"
	p, n, err := h.pager.page(op, nil, in.MaxResults, in.NextToken)
	if err != nil {
		return nil, err
	}
	rows, err := h.domain.ListPublicKeys(ctx, p)
	if err != nil {
		return nil, err
	}
	rows, next := trim(h.pager, op, nil, rows, n, func(k stage.PublicKeyView) store.Cursor {
		return store.Cursor{Time: k.CreatedAt, ID: string(k.ID)}
	})
	out := struct {
		PublicKeys []wirePublicKey `json:"publicKeys"`
		NextToken  *string         `json:"nextToken,omitempty"`
	}{PublicKeys: make([]wirePublicKey, len(rows)), NextToken: next}
	for i, k := range rows {
		out.PublicKeys[i] = publicKeySummaryOut(k)
	}
	return out, nil
}

func deletePublicKey(ctx context.Context, h *Handler, in *arnIn) (any, error) {
	return empty{}, h.domain.DeletePublicKey(ctx, in.ARN)
}

type tagIn struct {
	ResourceARN string            `json:"resourceArn"`
	Tags        map[string]string `json:"tags"`
	TagKeys     []string          `json:"tagKeys"`
}

func tagResource(ctx context.Context, h *Handler, in *tagIn) (any, error) {
	return empty{}, h.domain.TagResource(ctx, in.ResourceARN, in.Tags)
}

func untagResource(ctx context.Context, h *Handler, in *tagIn) (any, error) {
	return empty{}, h.domain.UntagResource(ctx, in.ResourceARN, in.TagKeys)
}

func listTagsForResource(ctx context.Context, h *Handler, in *tagIn) (any, error) {
	tags, err := h.domain.ListTags(ctx, in.ResourceARN)
	if err != nil {
		return nil, err
	}
	return struct {
		Tags map[string]string `json:"tags"`
	}{tags}, nil
}

type createStorageIn struct {
	Name string `json:"name"`
	S3   struct {
		BucketName string `json:"bucketName"`
	} `json:"s3"`
	Tags map[string]string `json:"tags"`
}

func createStorageConfiguration(ctx context.Context, h *Handler, in *createStorageIn) (any, error) {
	c, err := h.domain.CreateStorageConfiguration(ctx, in.Name, in.S3.BucketName, in.Tags)
	if err != nil {
		return nil, err
	}
	return struct {
		StorageConfiguration wireStorageConfiguration `json:"storageConfiguration"`
	}{storageConfigurationOut(c)}, nil
}

func getStorageConfiguration(ctx context.Context, h *Handler, in *arnIn) (any, error) {
	c, err := h.domain.GetStorageConfiguration(ctx, in.ARN)
	if err != nil {
		return nil, err
	}
	return struct {
		StorageConfiguration wireStorageConfiguration `json:"storageConfiguration"`
	}{storageConfigurationOut(c)}, nil
}

func listStorageConfigurations(ctx context.Context, h *Handler, in *pageIn) (any, error) {
	const op = "ListStorageConfigurations"
	p, n, err := h.pager.page(op, nil, in.MaxResults, in.NextToken)
	if err != nil {
		return nil, err
	}
	rows, err := h.domain.ListStorageConfigurations(ctx, p)
	if err != nil {
		return nil, err
	}
	rows, next := trim(h.pager, op, nil, rows, n, func(c stage.StorageConfigurationView) store.Cursor {
		return store.Cursor{Time: c.CreatedAt, ID: string(c.ID)}
	})
	out := struct {
		StorageConfigurations []wireStorageConfiguration `json:"storageConfigurations"`
		NextToken             *string                    `json:"nextToken,omitempty"`
	}{StorageConfigurations: make([]wireStorageConfiguration, len(rows)), NextToken: next}
	for i, c := range rows {
		out.StorageConfigurations[i] = storageConfigurationOut(c) // StorageConfigurationSummary has every member
	}
	return out, nil
}

func deleteStorageConfiguration(ctx context.Context, h *Handler, in *arnIn) (any, error) {
	return empty{}, h.domain.DeleteStorageConfiguration(ctx, in.ARN)
}
