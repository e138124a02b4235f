package media

import "testing"

func TestUnknownPublishCodecIsRefused(t *testing.T) {
	if s, err := New(Config{UDPAddr: "127.0.0.1:0", PublishCodecs: []string{"video/H265"}}); err == nil {
		_ = s.Close()
		t.Fatal("an SFU with a codec it cannot forward started")
	}
	s, err := New(Config{UDPAddr: "127.0.0.1:0", PublishCodecs: []string{"video/H264", "video/vp8", "video/VP9", "video/AV1"}})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
}
