package api

import (
	"time"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/stage"
)

// Output shapes of the model (ivs-realtime-2020-07-14.json), as JSON. Timestamps are ISO-8601 strings in
// UTC with Z: both SDKs reject epoch numbers (docs/DESIGN.md §2.1).

const timeLayout = "2006-01-02T15:04:05.000Z"

func stamp(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(timeLayout)
	return &s
}

type wireEndpoints struct {
	Events string `json:"events,omitempty"`
	WHIP   string `json:"whip,omitempty"`
}

type wireStage struct {
	ARN             string            `json:"arn"`
	Name            string            `json:"name"`
	ActiveSessionID string            `json:"activeSessionId,omitempty"`
	Tags            map[string]string `json:"tags"`
	// Recording is in the model's Stage, not its StageSummary.
	Recording *wireRecording `json:"autoParticipantRecordingConfiguration,omitempty"`
	Endpoints *wireEndpoints `json:"endpoints,omitempty"`
}

func (h *Handler) stageOut(v stage.StageView) wireStage {
	events, whip := h.domain.Endpoints()
	return wireStage{ARN: v.ARN, Name: v.Name, ActiveSessionID: string(v.ActiveSessionID), Tags: v.Tags,
		Recording: h.recordingOut(v.Recording), Endpoints: &wireEndpoints{Events: events, WHIP: whip}}
}

// wireRecording is the model's AutoParticipantRecordingConfiguration, every member present with its value
// or its documented default: a stage that does not record shows storageConfigurationArn "" and the
// defaults, which is what the model says sending "" resets the configuration to.
type wireRecording struct {
	StorageConfigurationARN string   `json:"storageConfigurationArn"`
	MediaTypes              []string `json:"mediaTypes"`
	ThumbnailConfiguration  struct {
		TargetIntervalSeconds int      `json:"targetIntervalSeconds"`
		Storage               []string `json:"storage"`
		RecordingMode         string   `json:"recordingMode"`
	} `json:"thumbnailConfiguration"`
	RecordingReconnectWindowSeconds int `json:"recordingReconnectWindowSeconds"`
	HLSConfiguration                struct {
		TargetSegmentDurationSeconds int `json:"targetSegmentDurationSeconds"`
	} `json:"hlsConfiguration"`
	RecordParticipantReplicas bool `json:"recordParticipantReplicas"`
}

func (h *Handler) recordingOut(r ivs.AutoRecording) *wireRecording {
	d := r.WithDefaults()
	out := &wireRecording{StorageConfigurationARN: h.domain.StorageConfigurationARN(r),
		MediaTypes: []string{string(d.MediaType)}, RecordingReconnectWindowSeconds: d.ReconnectWindowSeconds,
		RecordParticipantReplicas: !d.SkipReplicas}
	t := &out.ThumbnailConfiguration
	t.TargetIntervalSeconds, t.RecordingMode, t.Storage = d.ThumbnailInterval, string(d.ThumbnailMode), []string{}
	if d.ThumbnailSequential {
		t.Storage = append(t.Storage, "SEQUENTIAL")
	}
	if d.ThumbnailLatest {
		t.Storage = append(t.Storage, "LATEST")
	}
	out.HLSConfiguration.TargetSegmentDurationSeconds = d.TargetSegmentSeconds
	return out
}

// stageSummaryOut is the model's StageSummary: no endpoints.
func stageSummaryOut(v stage.StageView) wireStage {
	return wireStage{ARN: v.ARN, Name: v.Name, ActiveSessionID: string(v.ActiveSessionID), Tags: v.Tags}
}

type wireToken struct {
	ParticipantID  string            `json:"participantId"`
	Token          string            `json:"token"`
	UserID         string            `json:"userId,omitempty"`
	Attributes     map[string]string `json:"attributes"`
	Duration       int               `json:"duration"`
	Capabilities   []string          `json:"capabilities"`
	ExpirationTime *string           `json:"expirationTime"`
}

func tokenOut(t stage.ParticipantToken) wireToken {
	caps := make([]string, len(t.Capabilities))
	for i, c := range t.Capabilities {
		caps[i] = string(c)
	}
	return wireToken{ParticipantID: string(t.ParticipantID), Token: t.Token, UserID: t.UserID, Attributes: t.Attributes,
		Duration: t.Duration, Capabilities: caps, ExpirationTime: stamp(t.ExpirationTime)}
}

type wireSession struct {
	SessionID string  `json:"sessionId"`
	StartTime *string `json:"startTime,omitempty"`
	EndTime   *string `json:"endTime,omitempty"`
}

func sessionOut(s ivs.Session) wireSession {
	return wireSession{SessionID: string(s.ID), StartTime: stamp(s.StartTime), EndTime: stamp(s.EndTime)}
}

// recordingStateOut is the participant's recordingState: DISABLED unless it was recorded (docs/DESIGN.md §7).
func recordingStateOut(p ivs.Participant) string {
	if p.Recording.State == "" {
		return string(ivs.RecordingDisabled)
	}
	return string(p.Recording.State)
}

type wireParticipantSummary struct {
	ParticipantID   string  `json:"participantId"`
	UserID          string  `json:"userId"`
	State           string  `json:"state"`
	FirstJoinTime   *string `json:"firstJoinTime,omitempty"`
	Published       bool    `json:"published"`
	RecordingState  string  `json:"recordingState"`
	ReplicationType string  `json:"replicationType"`
	RedundantIngest bool    `json:"redundantIngest"`
}

func participantSummaryOut(p ivs.Participant) wireParticipantSummary {
	return wireParticipantSummary{ParticipantID: string(p.ID), UserID: p.UserID, State: string(p.State),
		FirstJoinTime: stamp(p.FirstJoinTime), Published: p.Published, RecordingState: recordingStateOut(p),
		ReplicationType: "NONE"}
}

type wireParticipant struct {
	wireParticipantSummary
	Attributes            map[string]string `json:"attributes"`
	ISPName               string            `json:"ispName"`
	OSName                string            `json:"osName"`
	OSVersion             string            `json:"osVersion"`
	BrowserName           string            `json:"browserName"`
	BrowserVersion        string            `json:"browserVersion"`
	SDKVersion            string            `json:"sdkVersion"`
	RecordingS3BucketName string            `json:"recordingS3BucketName"`
	RecordingS3Prefix     string            `json:"recordingS3Prefix"`
	Protocol              string            `json:"protocol"`
}

func participantOut(p ivs.Participant) wireParticipant {
	attrs := p.Attributes
	if attrs == nil {
		attrs = map[string]string{}
	}
	proto := p.Client.Protocol
	if proto == "" {
		proto = ivs.ProtocolUnknown
	}
	return wireParticipant{wireParticipantSummary: participantSummaryOut(p), Attributes: attrs,
		ISPName: p.Client.ISPName, OSName: p.Client.OSName, OSVersion: p.Client.OSVersion,
		BrowserName: p.Client.BrowserName, BrowserVersion: p.Client.BrowserVersion, SDKVersion: p.Client.SDKVersion,
		RecordingS3BucketName: p.Recording.BucketName, RecordingS3Prefix: p.Recording.Prefix, Protocol: string(proto)}
}

type wireEvent struct {
	Name                string  `json:"name"`
	ParticipantID       string  `json:"participantId"`
	EventTime           *string `json:"eventTime"`
	RemoteParticipantID string  `json:"remoteParticipantId,omitempty"`
	ErrorCode           string  `json:"errorCode,omitempty"`
	Replica             bool    `json:"replica"`
}

func eventOut(e ivs.Event) wireEvent {
	return wireEvent{Name: string(e.Name), ParticipantID: string(e.ParticipantID), EventTime: stamp(e.Time),
		RemoteParticipantID: string(e.RemoteParticipantID), ErrorCode: string(e.ErrorCode)}
}

type wirePublicKey struct {
	ARN               string            `json:"arn"`
	Name              string            `json:"name"`
	PublicKeyMaterial string            `json:"publicKeyMaterial,omitempty"`
	Fingerprint       string            `json:"fingerprint,omitempty"`
	Tags              map[string]string `json:"tags"`
}

func publicKeyOut(k stage.PublicKeyView) wirePublicKey {
	return wirePublicKey{ARN: k.ARN, Name: k.Name, PublicKeyMaterial: k.Material, Fingerprint: k.Fingerprint, Tags: k.Tags}
}

func publicKeySummaryOut(k stage.PublicKeyView) wirePublicKey {
	return wirePublicKey{ARN: k.ARN, Name: k.Name, Tags: k.Tags}
}

// wireStorageConfiguration is the model's StorageConfiguration, and its StorageConfigurationSummary (the
// same members).
type wireStorageConfiguration struct {
	ARN  string `json:"arn"`
	Name string `json:"name"`
	S3   struct {
		BucketName string `json:"bucketName"`
	} `json:"s3"`
	Tags map[string]string `json:"tags"`
}

func storageConfigurationOut(c stage.StorageConfigurationView) wireStorageConfiguration {
	out := wireStorageConfiguration{ARN: c.ARN, Name: c.Name, Tags: c.Tags}
	out.S3.BucketName = c.BucketName
	return out
}
