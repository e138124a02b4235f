package ivs

import (
	"regexp"
	"testing"
)

// arnRE is the grammar ParseARN implements by hand.
var arnRE = regexp.MustCompile(`^arn:aws:ivs:([a-z0-9-]+):([0-9]+):([a-z-]+)/([a-zA-Z0-9-]+)$`)

func parseARNByRE(a Account, arn string) (ResourceType, string, bool) {
	m := arnRE.FindStringSubmatch(arn)
	if m == nil || m[1] != a.Region || m[2] != a.ID {
		return "", "", false
	}
	return ResourceType(m[3]), m[4], true
}

func checkParseARN(t *testing.T, a Account, arn string) {
	t.Helper()
	typ, id, ok := a.ParseARN(arn)
	wtyp, wid, wok := parseARNByRE(a, arn)
	if typ != wtyp || id != wid || ok != wok {
		t.Fatalf("ParseARN(%q) = %q %q %v, want %q %q %v", arn, typ, id, ok, wtyp, wid, wok)
	}
}

func TestParseARN(t *testing.T) {
	a := Account{Region: "us-east-1", ID: "000000000000"}
	for _, arn := range []string{
		"arn:aws:ivs:us-east-1:000000000000:stage/AbCd1234EfGh", "arn:aws:ivs:us-east-1:000000000000:public-key/abc-DEF",
		"arn:aws:ivs:us-east-1:000000000000:stage/", "arn:aws:ivs:us-east-1:000000000000:/x", "arn:aws:ivs:us-east-1:000000000000:stage",
		"arn:aws:ivs:us-east-1:000000000000:stage/a/b", "arn:aws:ivs:us-east-1:000000000000:stage/a:b", "arn:aws:ivs:eu-west-1:000000000000:stage/a",
		"arn:aws:ivs:us-east-1:000000000001:stage/a", "arn:aws:ivs::000000000000:stage/a", "arn:aws:ivs:us-east-1::stage/a",
		"arn:aws:ivs:us-east-1:000000000000:Stage/a", "arn:aws:ivs:us-east-1:000000000000:stage/a_b", "arn:aws:ivs:us-east-1:000000000000:stage/é",
		"arn:aws:ivs:us-east-1:000000000000:stage/a\n", "xarn:aws:ivs:us-east-1:000000000000:stage/a", "", "arn:aws:ivs:",
	} {
		checkParseARN(t, a, arn)
	}
}

func FuzzParseARN(f *testing.F) {
	f.Add("arn:aws:ivs:us-east-1:000000000000:stage/AbCd1234EfGh", "us-east-1", "000000000000")
	f.Add("arn:aws:ivs:a:1:b-c/D-1", "a", "1")
	f.Fuzz(func(t *testing.T, arn, region, account string) {
		checkParseARN(t, Account{Region: region, ID: account}, arn)
	})
}
