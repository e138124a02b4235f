package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openstage/openstage/internal/config"
	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/ivstest"
	"github.com/openstage/openstage/internal/peer"
	"github.com/openstage/openstage/internal/stage"
	"github.com/openstage/openstage/internal/store"
)

// The network of TestICETCPFromANetworkWithoutUDP: a /30 of 10.254.0.0/16 of its own (picked by the
// process id, so that concurrent runs on one machine do not meet, and checked to be unused), on a veth
// pair between the host and a network namespace the test makes and deletes. Nothing leaves the pair.
type netnsNet struct{ ns, hostIP, clientIP, hostDev string }

const netnsPrefix = "/30"

// helperEnv names the variables that make this test binary the client inside the namespace.
const (
	helperEnv      = "OPENSTAGE_NETNS_HELPER"
	helperWHIP     = "OPENSTAGE_NETNS_WHIP"
	helperPubToken = "OPENSTAGE_NETNS_PUB_TOKEN"
	helperPubID    = "OPENSTAGE_NETNS_PUB_ID"
	helperSubToken = "OPENSTAGE_NETNS_SUB_TOKEN"
	helperUDPProbe = "OPENSTAGE_NETNS_UDP_PROBE"
	helperLocal    = "OPENSTAGE_NETNS_LOCAL_IP"
)

// needNetns skips (or, under CI=true, fails) when the machine cannot make network namespaces and
// firewall them: root, ip (iproute2) and nft (nftables) or iptables are needed. It returns the firewall.
func needNetns(t *testing.T) string {
	t.Helper()
	miss := func(why string) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and %s", why)
		}
		t.Skip(why)
	}
	if os.Geteuid() != 0 {
		miss("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		miss("ip (iproute2) is not installed")
	}
	for _, fw := range []string{"nft", "iptables"} {
		if _, err := exec.LookPath(fw); err == nil {
			return fw
		}
	}
	miss("neither nft (nftables) nor iptables is installed")
	return ""
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// udpDroppingNetns makes a network namespace joined to the host by a veth pair (the host side hostIP, the
// namespace side clientIP), where every UDP datagram in or out is dropped and counted, as on a
// network that blocks UDP. The test's cleanup deletes it, and the veth
// pair with it.
func udpDroppingNetns(t *testing.T, fw string) netnsNet {
	t.Helper()
	return makeNetns(t, fw)
}

// makeNetns makes the namespace and its veth pair; with fw, a firewall in it drops every UDP datagram.
func makeNetns(t *testing.T, fw string) netnsNet {
	t.Helper()
	var n netnsNet
	for i := range 64 {
		k := (os.Getpid() + i) % (1 << 14) // 16384 /30s in 10.254.0.0/16
		base := fmt.Sprintf("10.254.%d.%d", k>>6, (k&63)*4)
		n.hostIP, n.clientIP = fmt.Sprintf("10.254.%d.%d", k>>6, (k&63)*4+1), fmt.Sprintf("10.254.%d.%d", k>>6, (k&63)*4+2)
		if out := run(t, "ip", "-o", "addr", "show", "to", base+netnsPrefix); strings.TrimSpace(out) == "" {
			break
		}
		n.hostIP = ""
	}
	if n.hostIP == "" {
		t.Fatal("no free /30 in 10.254.0.0/16 near this process's id")
	}
	netnsHostIP, netnsClientIP := n.hostIP, n.clientIP
	id := strconv.Itoa(os.Getpid() % 100000)
	ns, host, client := "ostcp"+id, "ostcph"+id, "ostcpn"+id
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", ns, err, out)
		}
	})
	run(t, "ip", "link", "add", host, "type", "veth", "peer", "name", client)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", host).Run() }) // gone with the namespace, normally
	run(t, "ip", "link", "set", client, "netns", ns)
	run(t, "ip", "addr", "add", netnsHostIP+netnsPrefix, "dev", host)
	run(t, "ip", "link", "set", host, "up")
	run(t, "ip", "netns", "exec", ns, "ip", "addr", "add", netnsClientIP+netnsPrefix, "dev", client)
	run(t, "ip", "netns", "exec", ns, "ip", "link", "set", client, "up")
	run(t, "ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
	n.hostDev = host
	switch fw {
	case "":
	case "nft":
		cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
		cmd.Stdin = strings.NewReader(`table inet openstage_test {
	chain in { type filter hook input priority 0; policy accept; meta l4proto udp counter drop; }
	chain out { type filter hook output priority 0; policy accept; meta l4proto udp counter drop; }
}
`)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("nft: %v\n%s", err, out)
		}
	default:
		run(t, "ip", "netns", "exec", ns, "iptables", "-A", "INPUT", "-p", "udp", "-j", "DROP")
		run(t, "ip", "netns", "exec", ns, "iptables", "-A", "OUTPUT", "-p", "udp", "-j", "DROP")
	}
	n.ns = ns
	return n
}

// droppedUDP is how many UDP packets the namespace's firewall dropped on their way out.
func droppedUDP(t *testing.T, fw, ns string) int {
	t.Helper()
	var out string
	var re *regexp.Regexp
	if fw == "nft" {
		out = run(t, "ip", "netns", "exec", ns, "nft", "list", "chain", "inet", "openstage_test", "out")
		re = regexp.MustCompile(`counter packets (\d+)`)
	} else {
		out = run(t, "ip", "netns", "exec", ns, "iptables", "-L", "OUTPUT", "-v", "-n", "-x")
		re = regexp.MustCompile(`(?m)^\s*(\d+)\s+\d+\s+DROP`)
	}
	m := re.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no drop counter in:\n%s", out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestICETCPFromANetworkWithoutUDP is ICE over TCP on a real network: a client in a network namespace whose
// UDP is dropped by a firewall — an ordinary pion client that offers UDP and TCP, as browsers do, with no
// setting for this network — publishes to a server on the host side of a veth pair, and subscribes to
// itself through a second participant. Its UDP checks die in the firewall; ICE connects over TCP; the
// server records the publish and subscription as usual and counts both connections as TCP.
func TestICETCPFromANetworkWithoutUDP(t *testing.T) {
	fw := needNetns(t)
	n := udpDroppingNetns(t, fw)
	ns := n.ns

	cfg := testConfig(t)
	cfg.Listen = net.JoinHostPort(n.hostIP, "0")
	cfg.RTCTCPPort = config.SameAsUDP
	r := runServer(t, cfg, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	v, toks, err := r.Server.Domain().CreateStage(ctx, "no-udp", nil, []stage.TokenSpec{{}, {Capabilities: []stage.Capability{stage.CapSubscribe}}})
	if err != nil {
		t.Fatal(err)
	}
	// Proof that the namespace has no UDP: a datagram the client sends here must not arrive.
	probe, err := net.ListenPacket("udp4", net.JoinHostPort(n.hostIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	probed := make(chan struct{})
	go func() {
		if _, _, err := probe.ReadFrom(make([]byte, 64)); err == nil {
			close(probed)
		}
	}()

	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestNetnsHelperProcess$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"=1", helperWHIP+"="+r.whip,
		helperPubToken+"="+toks[0].Token, helperPubID+"="+string(toks[0].ParticipantID), helperSubToken+"="+toks[1].Token,
		helperUDPProbe+"="+probe.LocalAddr().String(), helperLocal+"="+n.clientIP)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	t.Logf("client in the namespace:\n%s", out.String())
	if err != nil {
		t.Fatalf("the client in the namespace failed: %v", err)
	}
	select {
	case <-probed:
		t.Fatal("a UDP datagram left the namespace: the firewall does not drop UDP")
	default:
	}
	result := map[string]string{}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "RESULT "); ok {
			for _, kv := range strings.Fields(rest) {
				if k, v, ok := strings.Cut(kv, "="); ok {
					result[k] = v
				}
			}
		}
	}
	if result["publish"] != "tcp" || result["subscribe"] != "tcp" {
		t.Fatalf("the client connected over publish=%q subscribe=%q, want tcp for both", result["publish"], result["subscribe"])
	}
	if n := droppedUDP(t, fw, ns); n == 0 {
		t.Error("the firewall dropped no UDP: the client never tried it")
	} else {
		t.Logf("the firewall dropped %d UDP packets from the client", n)
	}
	m := r.metrics(t)
	for _, want := range []string{`openstage_media_connections_total{transport="tcp"} 2`, `openstage_media_connections_total{transport="udp"} 0`} {
		if !strings.Contains(m, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	sess, err := r.Server.Domain().ListSessions(ctx, v.ARN, store.Page{Limit: 1})
	if err != nil || len(sess) != 1 {
		t.Fatalf("sessions %v %v", sess, err)
	}
	for _, c := range []struct {
		id   ivs.ParticipantID
		want string
	}{
		{toks[0].ParticipantID, "JOINED PUBLISH_STARTED PUBLISH_STOPPED LEFT"},
		{toks[1].ParticipantID, "JOINED SUBSCRIBE_STARTED SUBSCRIBE_STOPPED LEFT"},
	} {
		ivstest.Eventually(t, ivstest.Until(ctx, 10*time.Second), 50*time.Millisecond, func() error {
			evs, err := r.Server.Domain().ListEvents(ctx, v.ARN, sess[0].ID, c.id, store.Page{Limit: 100})
			if err != nil {
				return err
			}
			var names []string
			for _, e := range evs {
				names = append(names, string(e.Name))
			}
			if got := strings.Join(names, " "); got != c.want {
				return fmt.Errorf("events of %s: %s, want %s", c.id, got, c.want)
			}
			return nil
		})
	}
}

// TestNetnsHelperProcess is the client of TestICETCPFromANetworkWithoutUDP, run by it inside the network
// namespace; it does nothing in a normal test run. It prints "RESULT publish=<transport>
// subscribe=<transport> ...".
func TestNetnsHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("the client of TestICETCPFromANetworkWithoutUDP")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	if c, err := net.Dial("udp4", os.Getenv(helperUDPProbe)); err == nil {
		for range 3 {
			_, _ = c.Write([]byte("probe"))
		}
		_ = c.Close()
	}
	whip, local := os.Getenv(helperWHIP), os.Getenv(helperLocal)
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections() // last: the package's leak check runs in this process too
	start := time.Now()
	pub, err := peer.Publish(ctx, peer.Options{WHIPURL: whip, Token: os.Getenv(helperPubToken), LocalAddr: local, ICE: peer.ICEAny, HTTP: hc})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if err := pub.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("publisher connected over %s after %v", pub.Transport(), time.Since(start))
	// The publisher's first packets make it a publisher (PUBLISH_STARTED); subscribing before would be
	// refused.
	ivstest.Eventually(t, ivstest.Until(ctx, 10*time.Second), 20*time.Millisecond, func() error {
		if pub.SentVideo.Load() < 10 {
			return errors.New("the publisher has not sent 10 frames yet")
		}
		return nil
	})
	time.Sleep(500 * time.Millisecond)
	sub, err := peer.Subscribe(ctx, peer.Options{WHIPURL: whip, Token: os.Getenv(helperSubToken), LocalAddr: local, ICE: peer.ICEAny, HTTP: hc},
		os.Getenv(helperPubID))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if err := sub.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	ivstest.Eventually(t, ivstest.Until(ctx, 10*time.Second), 20*time.Millisecond, func() error {
		if v, a, k := sub.VideoPackets.Load(), sub.AudioPackets.Load(), sub.Keyframes.Load(); v < 30 || a < 25 || k == 0 {
			return fmt.Errorf("the subscriber got %d video packets, %d audio, %d keyframes", v, a, k)
		}
		return nil
	})
	fmt.Printf("RESULT publish=%s subscribe=%s video=%d audio=%d keyframes=%d\n", pub.Transport(), sub.Transport(),
		sub.VideoPackets.Load(), sub.AudioPackets.Load(), sub.Keyframes.Load())
	if err := sub.Delete(ctx); err != nil {
		t.Error(err)
	}
	if err := pub.Delete(ctx); err != nil {
		t.Error(err)
	}
}
