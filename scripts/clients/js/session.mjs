// A scripted session of the AWS SDK for JavaScript v3 (@aws-sdk/client-ivs-realtime) against openstage:
// every operation openstage implements, the SDK's paginators, its typed errors (checked with instanceof,
// the way applications catch them) and its timestamp parsing. It stops at the first failed check with a
// message saying what was expected, and exits 1; it prints "js-sdk: ok" when everything held.
//
//   OPENSTAGE_ENDPOINT=http://127.0.0.1:8080 AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... node session.mjs
//
// Environment:
//   OPENSTAGE_ENDPOINT                     the server (required)
//   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY  a key that may do everything (required)
//   AWS_REGION                             the server's region (default us-east-1)
//   OPENSTAGE_READONLY_KEY_ID, OPENSTAGE_READONLY_SECRET
//                                          a key limited to ivs:Get* and ivs:List* (optional: AccessDenied checks)
//   OPENSTAGE_SESSION_STAGE_ARN, OPENSTAGE_SESSION_ID, OPENSTAGE_SESSION_PARTICIPANTS (ids in join order,
//   comma-separated), OPENSTAGE_SESSION_PUBLISHERS (the ones that published), OPENSTAGE_SESSION_COUNT (how
//   many sessions the stage had): an ended session that real peers populated (optional: the history checks)
//
// The server must be fresh enough to have no imported public keys (the quota check imports up to the
// default quota of 3 and one more).

import { generateKeyPairSync } from "node:crypto";
import {
  IVSRealTimeClient,
  IVSRealTimeServiceException,
  AccessDeniedException,
  ConflictException,
  ResourceNotFoundException,
  ServiceQuotaExceededException,
  ValidationException,
  CreateStageCommand,
  GetStageCommand,
  UpdateStageCommand,
  DeleteStageCommand,
  ListStagesCommand,
  CreateParticipantTokenCommand,
  TagResourceCommand,
  UntagResourceCommand,
  ListTagsForResourceCommand,
  ImportPublicKeyCommand,
  GetPublicKeyCommand,
  DeletePublicKeyCommand,
  ListPublicKeysCommand,
  GetStageSessionCommand,
  GetParticipantCommand,
  ListParticipantsCommand,
  StartCompositionCommand,
  CreateStorageConfigurationCommand,
  GetStorageConfigurationCommand,
  DeleteStorageConfigurationCommand,
  paginateListStorageConfigurations,
  paginateListStages,
  paginateListPublicKeys,
  paginateListStageSessions,
  paginateListParticipants,
  paginateListParticipantEvents,
} from "@aws-sdk/client-ivs-realtime";

class CheckFailed extends Error {}

function check(cond, what) {
  if (!cond) throw new CheckFailed(what);
}

function step(msg) {
  console.log(`js-sdk: ${msg}`);
}

function env(name, fallback) {
  const v = process.env[name];
  if (v === undefined || v === "") {
    if (fallback !== undefined) return fallback;
    throw new CheckFailed(`environment variable ${name} is required`);
  }
  return v;
}

// expectError runs fn and checks it throws an instance of cls (the SDK's modeled exception class) with the
// given HTTP status; it returns the error for further checks.
async function expectError(what, cls, status, fn) {
  let err;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  check(err !== undefined, `${what}: expected ${cls.name}, but the call succeeded`);
  check(
    err instanceof cls,
    `${what}: expected an instance of ${cls.name}, got ${err?.constructor?.name} ${err?.name}: ${err?.message}`,
  );
  check(err instanceof IVSRealTimeServiceException, `${what}: ${cls.name} is not an IVSRealTimeServiceException`);
  check(err.$metadata?.httpStatusCode === status, `${what}: HTTP ${err.$metadata?.httpStatusCode}, want ${status}`);
  check(typeof err.exceptionMessage === "string" && err.exceptionMessage.length > 0, `${what}: no exceptionMessage`);
  step(`${what}: ${cls.name} (${status}) "${err.exceptionMessage}"`);
  return err;
}

function isDate(v) {
  return v instanceof Date && !Number.isNaN(v.getTime());
}

const stageArnRE = /^arn:aws:ivs:[a-z0-9-]+:[0-9]+:stage\/[a-zA-Z0-9]{12}$/;
const keyArnRE = /^arn:aws:ivs:[a-z0-9-]+:[0-9]+:public-key\/[a-zA-Z0-9]{12}$/;
const storageArnRE = /^arn:aws:ivs:[a-z0-9-]+:[0-9]+:storage-configuration\/[a-zA-Z0-9]{12}$/;

const endpoint = env("OPENSTAGE_ENDPOINT");
const region = env("AWS_REGION", "us-east-1");
function clientFor(accessKeyId, secretAccessKey) {
  // maxAttempts 1: a retried 500 would hide a server error behind a later success.
  return new IVSRealTimeClient({ endpoint, region, credentials: { accessKeyId, secretAccessKey }, maxAttempts: 1 });
}

async function stages(c) {
  // CreateStage with participant tokens, GetStage, UpdateStage.
  const created = await c.send(
    new CreateStageCommand({
      name: "js-sdk-session",
      tags: { team: "js", "cost-center": "42" },
      participantTokenConfigurations: [
        { userId: "host", capabilities: ["PUBLISH", "SUBSCRIBE"], attributes: { role: "host" }, duration: 120 },
        { userId: "viewer", capabilities: ["SUBSCRIBE"] },
      ],
    }),
  );
  const stage = created.stage;
  check(stageArnRE.test(stage?.arn ?? ""), `CreateStage: stage arn ${stage?.arn}`);
  check(stage.name === "js-sdk-session", `CreateStage: name ${stage.name}`);
  check(typeof stage.endpoints?.whip === "string" && stage.endpoints.whip.startsWith("http"), `CreateStage: endpoints.whip ${stage.endpoints?.whip}`);
  check(typeof stage.endpoints?.events === "string" && stage.endpoints.events.startsWith("ws"), `CreateStage: endpoints.events ${stage.endpoints?.events}`);
  const toks = created.participantTokens ?? [];
  check(toks.length === 2, `CreateStage: ${toks.length} participant tokens, want 2`);
  for (const t of toks) {
    check(t.token?.split(".").length === 3, `CreateStage: token for ${t.userId} is not a JWT`);
    check(/^[a-zA-Z0-9]{12}$/.test(t.participantId ?? ""), `CreateStage: participantId ${t.participantId}`);
    check(isDate(t.expirationTime), `CreateStage: expirationTime of ${t.userId} is not a Date: ${t.expirationTime}`);
  }
  const host = toks.find((t) => t.userId === "host");
  check(host?.attributes?.role === "host", `CreateStage: host attributes ${JSON.stringify(host?.attributes)}`);
  check(JSON.stringify([...host.capabilities].sort()) === '["PUBLISH","SUBSCRIBE"]', `CreateStage: host capabilities ${host.capabilities}`);
  const hostTTL = (host.expirationTime.getTime() - Date.now()) / 60000;
  check(hostTTL > 118 && hostTTL <= 120.1, `CreateStage: host token lives ${hostTTL.toFixed(1)} min, want 120`);
  step(`CreateStage ${stage.arn} with ${toks.length} tokens`);

  const got = (await c.send(new GetStageCommand({ arn: stage.arn }))).stage;
  check(got.name === "js-sdk-session" && got.tags?.team === "js", `GetStage: ${JSON.stringify(got)}`);
  check(got.activeSessionId === undefined || got.activeSessionId === "", `GetStage: an unused stage has activeSessionId ${got.activeSessionId}`);

  const upd = (await c.send(new UpdateStageCommand({ arn: stage.arn, name: "js-sdk-renamed" }))).stage;
  check(upd.name === "js-sdk-renamed", `UpdateStage: name ${upd.name}`);
  const again = (await c.send(new GetStageCommand({ arn: stage.arn }))).stage;
  check(again.name === "js-sdk-renamed", `GetStage after UpdateStage: name ${again.name}`);
  step("GetStage, UpdateStage");

  const pt = (
    await c.send(
      new CreateParticipantTokenCommand({
        stageArn: stage.arn,
        userId: "alice",
        duration: 5,
        attributes: { seat: "3" },
        capabilities: ["SUBSCRIBE"],
      }),
    )
  ).participantToken;
  check(pt?.token?.split(".").length === 3, "CreateParticipantToken: no JWT");
  check(pt.userId === "alice" && pt.attributes?.seat === "3", `CreateParticipantToken: ${JSON.stringify(pt)}`);
  check(JSON.stringify(pt.capabilities) === '["SUBSCRIBE"]', `CreateParticipantToken: capabilities ${pt.capabilities}`);
  check(isDate(pt.expirationTime), `CreateParticipantToken: expirationTime is not a Date: ${pt.expirationTime}`);
  const ttl = (pt.expirationTime.getTime() - Date.now()) / 60000;
  check(ttl > 4 && ttl <= 5.1, `CreateParticipantToken: token lives ${ttl.toFixed(2)} min, want 5`);
  step(`CreateParticipantToken ${pt.participantId}, expires ${pt.expirationTime.toISOString()}`);
  return stage.arn;
}

async function tags(c, arn) {
  // The ARN has a '/': the SDK percent-encodes it into the path, GET|POST|DELETE /tags/{resourceArn}.
  check(arn.includes("/"), "the stage ARN has no '/'");
  await c.send(new TagResourceCommand({ resourceArn: arn, tags: { env: "dev", owner: "js" } }));
  let t = (await c.send(new ListTagsForResourceCommand({ resourceArn: arn }))).tags;
  const want = { "cost-center": "42", env: "dev", owner: "js", team: "js" };
  check(JSON.stringify(t, Object.keys(t).sort()) === JSON.stringify(want), `ListTagsForResource: ${JSON.stringify(t)}, want ${JSON.stringify(want)}`);
  await c.send(new UntagResourceCommand({ resourceArn: arn, tagKeys: ["env", "team"] }));
  t = (await c.send(new ListTagsForResourceCommand({ resourceArn: arn }))).tags;
  check(JSON.stringify(t, Object.keys(t).sort()) === '{"cost-center":"42","owner":"js"}', `after UntagResource: ${JSON.stringify(t)}`);
  step("TagResource, ListTagsForResource, UntagResource");
}

async function listStages(c, firstArn) {
  const made = [firstArn];
  for (let i = 0; i < 7; i++) {
    made.push((await c.send(new CreateStageCommand({ name: `js-page-${i}` }))).stage.arn);
  }
  const seen = [];
  let pages = 0;
  let lastHadToken = false;
  for await (const page of paginateListStages({ client: c, pageSize: 3 }, {})) {
    pages++;
    check(page.stages.length <= 3, `ListStages page ${pages}: ${page.stages.length} stages, pageSize 3`);
    for (const s of page.stages) {
      check(stageArnRE.test(s.arn), `ListStages: arn ${s.arn}`);
      seen.push(s.arn);
    }
    lastHadToken = Boolean(page.nextToken);
  }
  check(!lastHadToken, "ListStages: the last page has a nextToken");
  check(new Set(seen).size === seen.length, `ListStages: duplicates across pages: ${seen}`);
  for (const a of made) check(seen.includes(a), `ListStages: ${a} missing from the pages`);
  const expected = Math.ceil(seen.length / 3);
  check(pages === expected && pages > 2, `ListStages: ${pages} pages for ${seen.length} stages, want ${expected} (> 2)`);
  // ListStages is in creation order (docs/DESIGN.md §2.4): the stages made here come in the order they were made.
  const order = seen.filter((a) => made.includes(a));
  check(JSON.stringify(order) === JSON.stringify(made), "ListStages: not in creation order");
  step(`paginateListStages: ${seen.length} stages in ${pages} pages of 3`);
  return made;
}

async function publicKeys(c) {
  const before = (await c.send(new ListPublicKeysCommand({}))).publicKeys;
  check(before.length === 0, `ListPublicKeys: the server already holds ${before.length} keys; run on a fresh server`);
  const pem = () =>
    generateKeyPairSync("ec", { namedCurve: "secp384r1" }).publicKey.export({ type: "spki", format: "pem" });
  const material = [pem(), pem(), pem(), pem()];
  const imported = [];
  for (let i = 0; i < 3; i++) {
    const k = (
      await c.send(new ImportPublicKeyCommand({ publicKeyMaterial: material[i], name: `js-key-${i}`, tags: { n: String(i) } }))
    ).publicKey;
    check(keyArnRE.test(k?.arn ?? ""), `ImportPublicKey: arn ${k?.arn}`);
    check(k.name === `js-key-${i}` && k.tags?.n === String(i), `ImportPublicKey: ${JSON.stringify(k)}`);
    check(typeof k.fingerprint === "string" && k.fingerprint.length > 0, "ImportPublicKey: no fingerprint");
    imported.push(k);
    if (i === 0) {
      // The same material twice: the server answers ConflictException, naming the key it already has.
      await expectError("ImportPublicKey of the same material again", ConflictException, 409, () =>
        c.send(new ImportPublicKeyCommand({ publicKeyMaterial: material[0], name: "js-key-dup" })),
      );
    }
  }
  step(`ImportPublicKey x3 (P-384, SPKI PEM from node:crypto)`);
  await expectError("ImportPublicKey over the quota of 3", ServiceQuotaExceededException, 402, () =>
    c.send(new ImportPublicKeyCommand({ publicKeyMaterial: material[3], name: "js-key-3" })),
  );

  const got = (await c.send(new GetPublicKeyCommand({ arn: imported[1].arn }))).publicKey;
  check(got.name === "js-key-1" && got.fingerprint === imported[1].fingerprint, `GetPublicKey: ${JSON.stringify(got)}`);
  check(got.publicKeyMaterial?.includes("BEGIN PUBLIC KEY"), "GetPublicKey: no PEM material");

  const listed = [];
  let pages = 0;
  for await (const page of paginateListPublicKeys({ client: c, pageSize: 2 }, {})) {
    pages++;
    listed.push(...page.publicKeys.map((k) => k.arn));
  }
  check(
    pages === 2 && JSON.stringify(listed) === JSON.stringify(imported.map((k) => k.arn)),
    `paginateListPublicKeys: ${pages} pages, ${listed}`,
  );
  step("GetPublicKey, paginateListPublicKeys (2 pages of 2)");

  for (const k of imported) await c.send(new DeletePublicKeyCommand({ arn: k.arn }));
  await expectError("GetPublicKey of a deleted key", ResourceNotFoundException, 404, () =>
    c.send(new GetPublicKeyCommand({ arn: imported[0].arn })),
  );
  const after = (await c.send(new ListPublicKeysCommand({}))).publicKeys;
  check(after.length === 0, `ListPublicKeys after DeletePublicKey: ${after.length} keys`);
  step("DeletePublicKey x3");
}

// Storage configurations, and a stage recording to one: its autoParticipantRecordingConfiguration with every
// member, the defaults filled in, and the ConflictException of deleting a configuration a stage names.
async function storage(c) {
  const made = [];
  for (const name of ["js-vod", "js-archive"]) {
    const sc = (
      await c.send(new CreateStorageConfigurationCommand({ name, s3: { bucketName: "js-sdk-recordings" }, tags: { app: "js" } }))
    ).storageConfiguration;
    check(storageArnRE.test(sc?.arn ?? ""), `CreateStorageConfiguration: arn ${sc?.arn}`);
    check(sc.name === name && sc.s3?.bucketName === "js-sdk-recordings" && sc.tags?.app === "js", `CreateStorageConfiguration: ${JSON.stringify(sc)}`);
    made.push(sc.arn);
  }
  const got = (await c.send(new GetStorageConfigurationCommand({ arn: made[0] }))).storageConfiguration;
  check(got.arn === made[0] && got.name === "js-vod", `GetStorageConfiguration: ${JSON.stringify(got)}`);
  const listed = [];
  for await (const page of paginateListStorageConfigurations({ client: c, pageSize: 1 }, {})) {
    listed.push(...page.storageConfigurations.map((s) => s.arn));
  }
  check(JSON.stringify(listed) === JSON.stringify(made), `paginateListStorageConfigurations: ${listed}`);
  step("CreateStorageConfiguration x2, GetStorageConfiguration, paginateListStorageConfigurations (pages of 1)");

  const stage = (
    await c.send(
      new CreateStageCommand({
        name: "js-recording",
        autoParticipantRecordingConfiguration: {
          storageConfigurationArn: made[0],
          thumbnailConfiguration: { recordingMode: "INTERVAL", targetIntervalSeconds: 5, storage: ["SEQUENTIAL", "LATEST"] },
          recordingReconnectWindowSeconds: 60,
          recordParticipantReplicas: false,
        },
      }),
    )
  ).stage;
  const want = {
    storageConfigurationArn: made[0],
    mediaTypes: ["AUDIO_VIDEO"],
    thumbnailConfiguration: { targetIntervalSeconds: 5, storage: ["SEQUENTIAL", "LATEST"], recordingMode: "INTERVAL" },
    recordingReconnectWindowSeconds: 60,
    hlsConfiguration: { targetSegmentDurationSeconds: 6 },
    recordParticipantReplicas: false,
  };
  const rec = (await c.send(new GetStageCommand({ arn: stage.arn }))).stage.autoParticipantRecordingConfiguration;
  check(JSON.stringify(rec) === JSON.stringify(want), `GetStage: autoParticipantRecordingConfiguration ${JSON.stringify(rec)}`);
  step("CreateStage with autoParticipantRecordingConfiguration; GetStage shows every member");

  await expectError("DeleteStorageConfiguration of one a stage names", ConflictException, 409, () =>
    c.send(new DeleteStorageConfigurationCommand({ arn: made[0] })),
  );
  await expectError("UpdateStage to a storage configuration that does not exist", ValidationException, 400, () =>
    c.send(
      new UpdateStageCommand({
        arn: stage.arn,
        autoParticipantRecordingConfiguration: { storageConfigurationArn: made[0].replace(/[^/]+$/, "AAAAAAAAAAAA") },
      }),
    ),
  );
  await c.send(new UpdateStageCommand({ arn: stage.arn, autoParticipantRecordingConfiguration: { storageConfigurationArn: made[1] } }));
  await c.send(new DeleteStorageConfigurationCommand({ arn: made[0] }));
  await c.send(new DeleteStageCommand({ arn: stage.arn }));
  await c.send(new DeleteStorageConfigurationCommand({ arn: made[1] }));
  await expectError("GetStorageConfiguration of a deleted one", ResourceNotFoundException, 404, () =>
    c.send(new GetStorageConfigurationCommand({ arn: made[1] })),
  );
  step("UpdateStage to another storage configuration, DeleteStorageConfiguration x2, DeleteStage");
}

async function errors(c, made) {
  const gone = made[made.length - 1];
  await c.send(new DeleteStageCommand({ arn: gone }));
  await expectError("GetStage of a deleted stage", ResourceNotFoundException, 404, () =>
    c.send(new GetStageCommand({ arn: gone })),
  );
  const bad = await expectError("GetStage with a malformed ARN", ValidationException, 400, () =>
    c.send(new GetStageCommand({ arn: "arn:aws:ivs:us-east-1:000000000000:channel/abc" })),
  );
  check(/arn/i.test(bad.exceptionMessage), `the malformed-ARN message does not name the field: ${bad.exceptionMessage}`);
  await expectError("ListStages maxResults 0", ValidationException, 400, () =>
    c.send(new ListStagesCommand({ maxResults: 0 })),
  );
  await expectError("ListStages maxResults 101", ValidationException, 400, () =>
    c.send(new ListStagesCommand({ maxResults: 101 })),
  );
  await expectError("ListStages with a forged nextToken", ValidationException, 400, () =>
    c.send(new ListStagesCommand({ nextToken: "Zm9yZ2Vk" })),
  );
  const unsupported = await expectError("StartComposition (not implemented)", ValidationException, 400, () =>
    c.send(
      new StartCompositionCommand({
        stageArn: made[0],
        destinations: [{ channel: { channelArn: "arn:aws:ivs:us-east-1:000000000000:channel/abcdABCD1234" } }],
      }),
    ),
  );
  check(/not supported by openstage/.test(unsupported.exceptionMessage), `StartComposition: ${unsupported.exceptionMessage}`);

  // A wrong secret: SigV4 fails with an AWS common error the model does not list, which the SDK
  // surfaces as the service's base exception named for the code.
  let sigErr;
  try {
    await clientFor(env("AWS_ACCESS_KEY_ID"), "wrong-secret").send(new ListStagesCommand({}));
  } catch (e) {
    sigErr = e;
  }
  check(
    sigErr instanceof IVSRealTimeServiceException && sigErr.name === "InvalidSignatureException" && sigErr.$metadata?.httpStatusCode === 403,
    `a wrong secret: want InvalidSignatureException (403), got ${sigErr?.name} ${sigErr?.$metadata?.httpStatusCode}`,
  );
  step("a wrong secret: InvalidSignatureException (403)");

  const roID = process.env.OPENSTAGE_READONLY_KEY_ID;
  if (roID) {
    const ro = clientFor(roID, env("OPENSTAGE_READONLY_SECRET"));
    const s = (await ro.send(new GetStageCommand({ arn: made[0] }))).stage;
    check(s.arn === made[0], "GetStage with the read-only key");
    await ro.send(new ListStagesCommand({ maxResults: 1 }));
    await expectError("CreateStage with a read-only key", AccessDeniedException, 403, () =>
      ro.send(new CreateStageCommand({ name: "nope" })),
    );
    await expectError("DeleteStage with a read-only key", AccessDeniedException, 403, () =>
      ro.send(new DeleteStageCommand({ arn: made[0] })),
    );
  } else {
    step("no OPENSTAGE_READONLY_KEY_ID: AccessDeniedException not checked");
  }

  for (const a of made.slice(0, -1)) await c.send(new DeleteStageCommand({ arn: a }));
  step(`DeleteStage x${made.length}`);
}

async function history(c) {
  const arn = process.env.OPENSTAGE_SESSION_STAGE_ARN;
  if (!arn) {
    step("no OPENSTAGE_SESSION_STAGE_ARN: session history not checked");
    return;
  }
  const sessionId = env("OPENSTAGE_SESSION_ID");
  const participants = env("OPENSTAGE_SESSION_PARTICIPANTS").split(",");
  const publishers = env("OPENSTAGE_SESSION_PUBLISHERS").split(",");
  const sessionCount = Number(env("OPENSTAGE_SESSION_COUNT"));

  // Sessions, newest first, one per page.
  const sessions = [];
  let pages = 0;
  for await (const page of paginateListStageSessions({ client: c, pageSize: 1 }, { stageArn: arn })) {
    pages++;
    check(page.stageSessions.length <= 1, `ListStageSessions: ${page.stageSessions.length} on a page of 1`);
    sessions.push(...page.stageSessions);
  }
  check(sessions.length === sessionCount && pages === sessionCount, `paginateListStageSessions: ${sessions.length} sessions in ${pages} pages, want ${sessionCount}`);
  for (const s of sessions) {
    check(isDate(s.startTime) && isDate(s.endTime), `ListStageSessions: ${s.sessionId} times ${s.startTime} ${s.endTime} are not Dates`);
    check(s.endTime >= s.startTime, `ListStageSessions: ${s.sessionId} ends before it starts`);
  }
  for (let i = 1; i < sessions.length; i++) {
    check(sessions[i - 1].startTime >= sessions[i].startTime, "ListStageSessions: not newest first");
  }
  check(sessions[0].sessionId === sessionId, `ListStageSessions: newest is ${sessions[0].sessionId}, want ${sessionId}`);
  const gs = (await c.send(new GetStageSessionCommand({ stageArn: arn, sessionId }))).stageSession;
  check(gs.sessionId === sessionId && isDate(gs.startTime) && isDate(gs.endTime), `GetStageSession: ${JSON.stringify(gs)}`);
  step(`paginateListStageSessions: ${sessions.length} sessions, one per page; GetStageSession`);

  // Participants in order of first join, one per page.
  const ids = [];
  let prev;
  pages = 0;
  for await (const page of paginateListParticipants({ client: c, pageSize: 1 }, { stageArn: arn, sessionId })) {
    pages++;
    for (const p of page.participants) {
      ids.push(p.participantId);
      check(isDate(p.firstJoinTime), `ListParticipants: firstJoinTime of ${p.participantId} is not a Date`);
      check(prev === undefined || p.firstJoinTime >= prev, "ListParticipants: not in order of first join");
      check(p.state === "DISCONNECTED", `ListParticipants: ${p.participantId} is ${p.state} in an ended session`);
      check(p.published === publishers.includes(p.participantId), `ListParticipants: ${p.participantId} published=${p.published}`);
      prev = p.firstJoinTime;
    }
  }
  check(JSON.stringify(ids) === JSON.stringify(participants), `paginateListParticipants: ${ids}, want ${participants}`);
  check(pages === participants.length, `paginateListParticipants: ${pages} pages for ${participants.length}`);
  const pub = (await c.send(new ListParticipantsCommand({ stageArn: arn, sessionId, filterByPublished: true }))).participants;
  check(
    JSON.stringify(pub.map((p) => p.participantId).sort()) === JSON.stringify([...publishers].sort()),
    `ListParticipants filterByPublished: ${pub.map((p) => p.participantId)}`,
  );
  step(`paginateListParticipants: ${ids.length} participants, one per page; filterByPublished`);

  for (const id of participants) {
    const names = [];
    let last;
    pages = 0;
    for await (const page of paginateListParticipantEvents({ client: c, pageSize: 1 }, { stageArn: arn, sessionId, participantId: id })) {
      pages++;
      for (const e of page.events) {
        check(isDate(e.eventTime), `ListParticipantEvents: eventTime of ${e.name} is not a Date`);
        check(last === undefined || e.eventTime >= last, `ListParticipantEvents of ${id}: not in time order`);
        check(e.participantId === id, `ListParticipantEvents of ${id}: event of ${e.participantId}`);
        last = e.eventTime;
        names.push(e.remoteParticipantId ? `${e.name}>${e.remoteParticipantId}` : e.name);
      }
    }
    check(names[0] === "JOINED" && names[names.length - 1] === "LEFT", `ListParticipantEvents of ${id}: ${names}`);
    if (publishers.includes(id)) {
      check(names.includes("PUBLISH_STARTED") && names.includes("PUBLISH_STOPPED"), `ListParticipantEvents of publisher ${id}: ${names}`);
    }
    check(pages === names.length && pages > 2, `paginateListParticipantEvents of ${id}: ${pages} pages for ${names.length} events`);
    step(`paginateListParticipantEvents ${id}: ${names.join(" ")}`);
  }

  const gp = (await c.send(new GetParticipantCommand({ stageArn: arn, sessionId, participantId: publishers[0] }))).participant;
  check(gp.published && gp.state === "DISCONNECTED" && gp.protocol === "WHIP", `GetParticipant ${publishers[0]}: ${JSON.stringify(gp)}`);
  check(isDate(gp.firstJoinTime), "GetParticipant: firstJoinTime is not a Date");
  await expectError("GetParticipant of nobody", ResourceNotFoundException, 404, () =>
    c.send(new GetParticipantCommand({ stageArn: arn, sessionId, participantId: "nobodyHere12" })),
  );
  step("GetParticipant");
}

async function main() {
  const c = clientFor(env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"));
  step(`endpoint ${endpoint}, region ${region}`);
  const arn = await stages(c);
  await tags(c, arn);
  const made = await listStages(c, arn);
  await publicKeys(c);
  await storage(c);
  await errors(c, made);
  await history(c);
  console.log("js-sdk: ok");
}

try {
  await main();
} catch (e) {
  if (e instanceof CheckFailed) {
    console.error(`js-sdk: FAIL: ${e.message}`);
  } else {
    console.error(`js-sdk: FAIL: unexpected ${e?.name ?? "error"}: ${e?.message}`);
    if (e?.$metadata) console.error(`  $metadata ${JSON.stringify(e.$metadata)}`);
    console.error(e?.stack);
  }
  process.exit(1);
}
