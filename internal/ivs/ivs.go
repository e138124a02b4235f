// Package ivs holds the resources of the IVS Real-Time API as openstage stores them: typed identifiers, ARNs,
// stages, sessions, participants, events and public keys. It has no behaviour beyond formatting and parsing;
// the lifecycle rules live in package stage.
package ivs

import (
	"crypto/rand"
	"fmt"
	"strings"
	"time"
)

// Typed identifiers: a StageID is never a SessionID by accident.
type (
	StageID       string // 12 alphanumerics, the last segment of a stage ARN
	SessionID     string // "st-" + 13 alphanumerics
	ParticipantID string // 12 alphanumerics for server-made tokens, a self-signed token's jti as is
	PublicKeyID   string // 12 alphanumerics, the last segment of a public key ARN
	// StorageConfigurationID: 12 alphanumerics, the last segment of a storage configuration ARN.
	StorageConfigurationID string
)

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomAlnum returns n characters from crypto/rand, without modulo bias (256 = 4*62 + 8: reject the top 8).
func randomAlnum(n int) string {
	out := make([]byte, 0, n)
	buf := make([]byte, n+8)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			panic(fmt.Sprintf("ivs: crypto/rand failed: %v", err)) // as crypto/rand itself does on Go ≥1.24
		}
		for _, b := range buf {
			if b >= 248 {
				continue
			}
			out = append(out, alnum[int(b)%62])
			if len(out) == n {
				break
			}
		}
	}
	return string(out)
}

func NewStageID() StageID             { return StageID(randomAlnum(12)) }
func NewSessionID() SessionID         { return SessionID("st-" + randomAlnum(13)) }
func NewParticipantID() ParticipantID { return ParticipantID(randomAlnum(12)) }
func NewPublicKeyID() PublicKeyID     { return PublicKeyID(randomAlnum(12)) }

func NewStorageConfigurationID() StorageConfigurationID {
	return StorageConfigurationID(randomAlnum(12))
}

// Account is where ARNs live: one region and account per server.
type Account struct {
	Region string
	ID     string
}

func (a Account) StageARN(id StageID) string {
	return "arn:aws:ivs:" + a.Region + ":" + a.ID + ":stage/" + string(id)
}

func (a Account) PublicKeyARN(id PublicKeyID) string {
	return "arn:aws:ivs:" + a.Region + ":" + a.ID + ":public-key/" + string(id)
}

func (a Account) StorageConfigurationARN(id StorageConfigurationID) string {
	return "arn:aws:ivs:" + a.Region + ":" + a.ID + ":storage-configuration/" + string(id)
}

// ResourceType is the ARN resource type segment.
type ResourceType string

const (
	ResourceStage     ResourceType = "stage"
	ResourcePublicKey ResourceType = "public-key"

	ResourceStorageConfiguration ResourceType = "storage-configuration"
)

// ParseARN splits an IVS ARN of this account: arn:aws:ivs:<region>:<account>:<type>/<id>, with region
// [a-z0-9-]+, account [0-9]+, type [a-z-]+ and id [a-zA-Z0-9-]+. ok is false for an ARN of another region
// or account, or of a shape openstage does not make. It is hand-written rather than a regular expression:
// every API call on a resource parses one, and the expression was a few per cent of a GetParticipant.
func (a Account) ParseARN(arn string) (typ ResourceType, id string, ok bool) {
	rest, found := strings.CutPrefix(arn, "arn:aws:ivs:")
	if !found {
		return "", "", false
	}
	region, rest, _ := strings.Cut(rest, ":")
	account, rest, _ := strings.Cut(rest, ":")
	t, id, found := strings.Cut(rest, "/")
	if !found || region != a.Region || account != a.ID || !all(region, isRegionChar) || !all(account, isDigit) ||
		!all(t, isTypeChar) || !all(id, isIDChar) {
		return "", "", false
	}
	return ResourceType(t), id, true
}

// all reports whether s is not empty and every byte of it is ok.
func all(s string, ok func(byte) bool) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool      { return '0' <= c && c <= '9' }
func isLower(c byte) bool      { return 'a' <= c && c <= 'z' }
func isRegionChar(c byte) bool { return isLower(c) || isDigit(c) || c == '-' }
func isTypeChar(c byte) bool   { return isLower(c) || c == '-' }
func isIDChar(c byte) bool     { return isLower(c) || 'A' <= c && c <= 'Z' || isDigit(c) || c == '-' }

// StageIDFromARN returns the stage id of a stage ARN of this account.
func (a Account) StageIDFromARN(arn string) (StageID, bool) {
	typ, id, ok := a.ParseARN(arn)
	if !ok || typ != ResourceStage {
		return "", false
	}
	return StageID(id), true
}

// PublicKeyIDFromARN returns the key id of a public-key ARN of this account.
func (a Account) PublicKeyIDFromARN(arn string) (PublicKeyID, bool) {
	typ, id, ok := a.ParseARN(arn)
	if !ok || typ != ResourcePublicKey {
		return "", false
	}
	return PublicKeyID(id), true
}

// StorageConfigurationIDFromARN returns the id of a storage-configuration ARN of this account.
func (a Account) StorageConfigurationIDFromARN(arn string) (StorageConfigurationID, bool) {
	typ, id, ok := a.ParseARN(arn)
	if !ok || typ != ResourceStorageConfiguration {
		return "", false
	}
	return StorageConfigurationID(id), true
}

// LastSegment returns what follows the last '/' of an ARN.
func LastSegment(arn string) string { return arn[strings.LastIndexByte(arn, '/')+1:] }

// Stage is a stage resource. Tags are kept with the resource's ARN (see store), not here.
type Stage struct {
	ID              StageID
	Name            string
	ActiveSessionID SessionID // empty when no session is active
	CreatedAt       time.Time
	// Recording is the stage's autoParticipantRecordingConfiguration; its zero value is the model's
	// defaults with no storage configuration (not recording).
	Recording AutoRecording
}

// Session is a stage session: from the first join to the end of the grace window after the last leave.
type Session struct {
	StageID   StageID
	ID        SessionID
	StartTime time.Time
	EndTime   time.Time // zero while active
}

func (s Session) Active() bool { return s.EndTime.IsZero() }

// ParticipantState is the model's ParticipantState enum.
type ParticipantState string

const (
	StateConnected    ParticipantState = "CONNECTED"
	StateDisconnected ParticipantState = "DISCONNECTED"
)

// Protocol is the model's ParticipantProtocol enum.
type Protocol string

const (
	ProtocolUnknown Protocol = "UNKNOWN"
	ProtocolWHIP    Protocol = "WHIP"
)

// ClientInfo is what the server learns about a participant's client at join.
type ClientInfo struct {
	ISPName        string
	OSName         string
	OSVersion      string
	BrowserName    string
	BrowserVersion string
	SDKVersion     string
	Protocol       Protocol
}

// Participant is one token's holder in one stage session (model shape Participant).
type Participant struct {
	StageID       StageID
	SessionID     SessionID
	ID            ParticipantID
	UserID        string
	State         ParticipantState
	FirstJoinTime time.Time
	Attributes    map[string]string
	Published     bool // sticky: ever published in this session
	Client        ClientInfo
	// Recording is the participant's individual recording (docs/DESIGN.md §7). Its one writer is the
	// recorder, through the store's SetParticipantRecording; PutParticipant leaves it as it is.
	Recording ParticipantRecording
}

// RecordingState is the model's ParticipantRecordingState enum.
type RecordingState string

const (
	RecordingDisabled RecordingState = "DISABLED" // the stage does not record (or the participant never published)
	RecordingStarting RecordingState = "STARTING" // recording-started.json written, no segment yet
	RecordingActive   RecordingState = "ACTIVE"   // segments are being written
	RecordingStopping RecordingState = "STOPPING" // the publisher is gone; the last files are being written
	RecordingStopped  RecordingState = "STOPPED"
	RecordingFailed   RecordingState = "FAILED" // storage refused a write, the recorder fell behind, or the server stopped
)

// Unfinished reports whether a recording in this state may still write: one a crash interrupted.
func (s RecordingState) Unfinished() bool {
	return s == RecordingStarting || s == RecordingActive || s == RecordingStopping
}

// ParticipantRecording is where a participant's recording is (recordingS3BucketName, recordingS3Prefix) and
// how far it got (recordingState). Its zero value is DISABLED, and stores return a DISABLED one as the zero
// value, so that a participant that never recorded reads back as it was written.
type ParticipantRecording struct {
	BucketName string
	Prefix     string
	State      RecordingState
}

// EventName is the model's EventName enum.
type EventName string

const (
	EventJoined           EventName = "JOINED"
	EventLeft             EventName = "LEFT"
	EventPublishStarted   EventName = "PUBLISH_STARTED"
	EventPublishStopped   EventName = "PUBLISH_STOPPED"
	EventSubscribeStarted EventName = "SUBSCRIBE_STARTED"
	EventSubscribeStopped EventName = "SUBSCRIBE_STOPPED"
	EventPublishError     EventName = "PUBLISH_ERROR"
	EventSubscribeError   EventName = "SUBSCRIBE_ERROR"
	EventJoinError        EventName = "JOIN_ERROR"
)

// ErrorCode is the model's EventErrorCode enum.
type ErrorCode string

const (
	ErrInsufficientCapabilities ErrorCode = "INSUFFICIENT_CAPABILITIES"
	ErrQuotaExceeded            ErrorCode = "QUOTA_EXCEEDED"
	ErrPublisherNotFound        ErrorCode = "PUBLISHER_NOT_FOUND"
	ErrBitrateExceeded          ErrorCode = "BITRATE_EXCEEDED"
	ErrResolutionExceeded       ErrorCode = "RESOLUTION_EXCEEDED"
	ErrStreamDurationExceeded   ErrorCode = "STREAM_DURATION_EXCEEDED"
	ErrInvalidAudioCodec        ErrorCode = "INVALID_AUDIO_CODEC"
	ErrInvalidVideoCodec        ErrorCode = "INVALID_VIDEO_CODEC"
	ErrBFramePresent            ErrorCode = "B_FRAME_PRESENT"
	ErrInternalServer           ErrorCode = "INTERNAL_SERVER_EXCEPTION"
)

// Event is one participant event. Seq orders a participant's events as they happened.
type Event struct {
	StageID             StageID
	SessionID           SessionID
	ParticipantID       ParticipantID
	Seq                 int64
	Name                EventName
	Time                time.Time
	RemoteParticipantID ParticipantID
	ErrorCode           ErrorCode
}

// PublicKey is an imported public key for self-signed participant tokens.
type PublicKey struct {
	ID          PublicKeyID
	Name        string
	Material    string // PEM as imported
	Fingerprint string
	CreatedAt   time.Time
}

// StorageConfiguration is where recordings go (model shape StorageConfiguration): an S3 bucket by name, which
// openstage keeps as a directory of its data dir or on an S3-compatible server. Tags are kept with the ARN.
type StorageConfiguration struct {
	ID         StorageConfigurationID
	Name       string
	BucketName string // s3.bucketName
	CreatedAt  time.Time
}

// RecordingMediaType is the model's ParticipantRecordingMediaType enum.
type RecordingMediaType string

const (
	MediaAudioVideo RecordingMediaType = "AUDIO_VIDEO"
	MediaAudioOnly  RecordingMediaType = "AUDIO_ONLY"
	MediaNone       RecordingMediaType = "NONE"
)

// ThumbnailMode is the model's ThumbnailRecordingMode enum.
type ThumbnailMode string

const (
	ThumbnailsInterval ThumbnailMode = "INTERVAL"
	ThumbnailsDisabled ThumbnailMode = "DISABLED"
)

// The model's documented defaults of AutoParticipantRecordingConfiguration and its members.
const (
	DefaultRecordingMediaType       = MediaAudioVideo
	DefaultThumbnailMode            = ThumbnailsDisabled
	DefaultThumbnailIntervalSeconds = 60
	DefaultTargetSegmentSeconds     = 6
)

// AutoRecording is a stage's individual participant recording configuration (model shape
// AutoParticipantRecordingConfiguration). Its zero value is the model's defaults: every field's zero means
// "the default", which is why replicas are recorded unless SkipReplicas (recordParticipantReplicas, default
// true) and why no thumbnail storage named means SEQUENTIAL. Stores keep it as JSON, the storage
// configuration aside in a column of its own (stages are looked up by it).
type AutoRecording struct {
	// StorageConfigurationID names the storage configuration; "" is not recording.
	StorageConfigurationID StorageConfigurationID `json:"-"`
	MediaType              RecordingMediaType     `json:"mediaType,omitempty"`                // "" = AUDIO_VIDEO
	ThumbnailMode          ThumbnailMode          `json:"thumbnailMode,omitempty"`            // "" = DISABLED
	ThumbnailInterval      int                    `json:"thumbnailIntervalSeconds,omitempty"` // 0 = 60 s
	ThumbnailSequential    bool                   `json:"thumbnailSequential,omitempty"`
	ThumbnailLatest        bool                   `json:"thumbnailLatest,omitempty"`
	ReconnectWindowSeconds int                    `json:"reconnectWindowSeconds,omitempty"`
	TargetSegmentSeconds   int                    `json:"targetSegmentSeconds,omitempty"` // 0 = 6 s
	SkipReplicas           bool                   `json:"skipReplicas,omitempty"`
}

// Enabled reports whether the stage records its publishers.
func (r AutoRecording) Enabled() bool { return r.StorageConfigurationID != "" }

// WithDefaults returns r with every defaulted field spelled out, as the API shows it.
func (r AutoRecording) WithDefaults() AutoRecording {
	if r.MediaType == "" {
		r.MediaType = DefaultRecordingMediaType
	}
	if r.ThumbnailMode == "" {
		r.ThumbnailMode = DefaultThumbnailMode
	}
	if r.ThumbnailInterval == 0 {
		r.ThumbnailInterval = DefaultThumbnailIntervalSeconds
	}
	if !r.ThumbnailSequential && !r.ThumbnailLatest {
		r.ThumbnailSequential = true
	}
	if r.TargetSegmentSeconds == 0 {
		r.TargetSegmentSeconds = DefaultTargetSegmentSeconds
	}
	return r
}
