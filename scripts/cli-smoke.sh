#!/usr/bin/env bash
# A short AWS CLI session against a freshly built openstage: the real `aws ivs-realtime` client, its
# SigV4 signing, its parsing of our answers and errors. Usage: scripts/cli-smoke.sh [path/to/openstage]
set -euo pipefail
bin=${1:-}
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
if [ -z "$bin" ]; then
  go build -o "$work/openstage" ./cmd/openstage
  bin=$work/openstage
fi
command -v aws >/dev/null || { echo "cli-smoke: the aws CLI is not installed" >&2; exit 1; }

"$bin" serve --listen 127.0.0.1:0 --rtc-udp-port 0 --data-dir "$work/data" >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 100); do grep -q 'listening on' "$work/out" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's/^openstage listening on \([^ ]*\).*/\1/p' "$work/out")
[ -n "$addr" ] || { cat "$work/out" "$work/err"; echo "cli-smoke: server did not start" >&2; exit 1; }
eval "$(sed -n 's/^  export /export /p' "$work/out")"   # the generated key, as printed for users
export AWS_CONFIG_FILE=$work/none AWS_SHARED_CREDENTIALS_FILE=$work/none AWS_PAGER=""
ep=(--endpoint-url "http://$addr" --output json)
ivs() { aws ivs-realtime "$@" "${ep[@]}"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); $1"; }
fail() { echo "cli-smoke: FAIL: $*" >&2; exit 1; }
step() { echo "cli-smoke: $*"; }
expect_error() { # expect_error TYPE args...
  local want=$1; shift
  if ivs "$@" >"$work/o" 2>"$work/e"; then fail "$* succeeded"; fi
  grep -q "($want)" "$work/e" || { cat "$work/e"; fail "$* did not fail with $want"; }
}

step create-stage
ivs create-stage --name smoke --tags team=video \
  --participant-token-configurations userId=host,capabilities=PUBLISH,SUBSCRIBE,duration=60 userId=viewer,capabilities=SUBSCRIBE \
  >"$work/stage.json"
arn=$(json 'print(d["stage"]["arn"])' <"$work/stage.json")
json '
s=d["stage"]; t=d["participantTokens"]
assert s["name"]=="smoke" and s["tags"]=={"team":"video"}, s
assert s["endpoints"]["whip"].endswith("/whip") and s["endpoints"]["events"].startswith("ws://"), s
assert len(t)==2 and t[0]["userId"]=="host" and t[0]["duration"]==60 and t[1]["capabilities"]==["SUBSCRIBE"], t
assert t[0]["expirationTime"].endswith("Z") and t[0]["token"].count(".")==2, t[0]' <"$work/stage.json" || fail "create-stage output"

step get-stage, update-stage, list-stages
ivs get-stage --arn "$arn" | json 'assert d["stage"]["arn"]=="'"$arn"'"' || fail get-stage
ivs update-stage --arn "$arn" --name renamed | json 'assert d["stage"]["name"]=="renamed"' || fail update-stage
ivs list-stages | json 'assert [s["arn"] for s in d["stages"]]==["'"$arn"'"]' || fail list-stages

step create-participant-token
ivs create-participant-token --stage-arn "$arn" --user-id alice --attributes k=v | json '
t=d["participantToken"]; assert t["userId"]=="alice" and t["duration"]==720 and t["attributes"]=={"k":"v"}, t
assert sorted(t["capabilities"])==["PUBLISH","SUBSCRIBE"], t' || fail create-participant-token

step tags
ivs tag-resource --resource-arn "$arn" --tags env=ci >/dev/null
ivs untag-resource --resource-arn "$arn" --tag-keys team >/dev/null
ivs list-tags-for-resource --resource-arn "$arn" | json 'assert d["tags"]=={"env":"ci"}, d' || fail tags

step public keys
openssl ecparam -name secp384r1 -genkey -noout -out "$work/key.pem" 2>/dev/null
openssl ec -in "$work/key.pem" -pubout -out "$work/pub.pem" 2>/dev/null
karn=$(ivs import-public-key --public-key-material "file://$work/pub.pem" --name ci | json 'print(d["publicKey"]["arn"])')
ivs list-public-keys | json 'assert [k["arn"] for k in d["publicKeys"]]==["'"$karn"'"]' || fail list-public-keys
ivs get-public-key --arn "$karn" | json 'assert len(d["publicKey"]["fingerprint"].split(":"))==16' || fail get-public-key
ivs delete-public-key --arn "$karn" >/dev/null

step storage configurations and a recording stage
sarn=$(ivs create-storage-configuration --name vod --s3 bucketName=smoke-recordings --tags kind=vod | json '
c=d["storageConfiguration"]; assert c["name"]=="vod" and c["s3"]=={"bucketName":"smoke-recordings"} and c["tags"]=={"kind":"vod"}, c
print(c["arn"])')
[ -d "$work/data/recordings/smoke-recordings" ] || fail "the bucket is not a directory of the data dir"
ivs get-storage-configuration --arn "$sarn" | json 'assert d["storageConfiguration"]["arn"]=="'"$sarn"'"' || fail get-storage-configuration
ivs list-storage-configurations | json 'assert [c["arn"] for c in d["storageConfigurations"]]==["'"$sarn"'"]' || fail list-storage-configurations
rarn=$(ivs create-stage --name rec --auto-participant-recording-configuration \
  "storageConfigurationArn=$sarn,mediaTypes=AUDIO_ONLY,thumbnailConfiguration={recordingMode=INTERVAL,targetIntervalSeconds=10,storage=[LATEST]},recordingReconnectWindowSeconds=30,hlsConfiguration={targetSegmentDurationSeconds=4},recordParticipantReplicas=false" | json '
r=d["stage"]["autoParticipantRecordingConfiguration"]
assert r=={"storageConfigurationArn":"'"$sarn"'","mediaTypes":["AUDIO_ONLY"],"thumbnailConfiguration":{"targetIntervalSeconds":10,"storage":["LATEST"],"recordingMode":"INTERVAL"},"recordingReconnectWindowSeconds":30,"hlsConfiguration":{"targetSegmentDurationSeconds":4},"recordParticipantReplicas":False}, r
print(d["stage"]["arn"])')
expect_error ConflictException delete-storage-configuration --arn "$sarn"
ivs update-stage --arn "$rarn" --auto-participant-recording-configuration storageConfigurationArn= | json '
r=d["stage"]["autoParticipantRecordingConfiguration"]; assert r["storageConfigurationArn"]=="" and r["mediaTypes"]==["AUDIO_VIDEO"], r' || fail "update-stage turning recording off"
ivs delete-storage-configuration --arn "$sarn" >/dev/null
expect_error ResourceNotFoundException get-storage-configuration --arn "$sarn"
ivs delete-stage --arn "$rarn" >/dev/null

step sessions and participants of a stage nobody joined
ivs list-stage-sessions --stage-arn "$arn" | json 'assert d["stageSessions"]==[]' || fail list-stage-sessions
ivs list-participants --stage-arn "$arn" --session-id st-0000000000000 | json 'assert d["participants"]==[]' || fail list-participants

step errors
expect_error ResourceNotFoundException get-stage-session --stage-arn "$arn" --session-id st-0000000000000
expect_error ValidationException create-participant-token --stage-arn "$arn" --duration 20161
expect_error ValidationException get-stage --arn "not-an-arn"
expect_error ValidationException list-participants --stage-arn "$arn" --session-id st-0000000000000 --filter-by-published --filter-by-state CONNECTED
expect_error ValidationException get-composition --arn arn:aws:ivs:us-east-1:000000000000:composition/abc
grep -q 'not supported by openstage' "$work/e" || fail "unsupported operation message"
AWS_SECRET_ACCESS_KEY=wrong expect_error InvalidSignatureException list-stages
AWS_ACCESS_KEY_ID=AKOSNOBODY expect_error UnrecognizedClientException list-stages

step delete-stage
ivs delete-stage --arn "$arn" >/dev/null
expect_error ResourceNotFoundException get-stage --arn "$arn"

kill -TERM "$pid"; wait "$pid" || fail "server exit status $? after SIGTERM"
echo "cli-smoke: ok"
