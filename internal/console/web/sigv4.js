// AWS Signature Version 4 for the console page, which calls openstage's AWS API from the browser with the
// API key the operator logs in with (https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html).
// The Authorization header form, for the API calls and the event stream (read with fetch, which can send it).
//
// HMAC-SHA256 and SHA-256 come from WebCrypto. Browsers give WebCrypto only to secure contexts (https, or
// http on localhost/127.0.0.1): a console opened over plain http from another machine has none, so a small
// SHA-256 (FIPS 180-4) and HMAC (RFC 2104) written here take over there.

const enc = new TextEncoder();

const subtle = globalThis.isSecureContext && globalThis.crypto && globalThis.crypto.subtle ? globalThis.crypto.subtle : null;

function bytes(data) {
  if (typeof data === "string") return enc.encode(data);
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  throw new TypeError("sigv4: data must be a string or bytes");
}

export function hex(buf) {
  const b = new Uint8Array(buf);
  let s = "";
  for (let i = 0; i < b.length; i++) s += b[i].toString(16).padStart(2, "0");
  return s;
}

// ---------------------------------------------------------------------------------------------------------
// SHA-256 and HMAC-SHA256 without WebCrypto (FIPS 180-4 §6.2; RFC 2104).

const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

// sha256Plain hashes bytes; it returns the 32-byte digest.
export function sha256Plain(data) {
  const msg = bytes(data);
  const bitLen = msg.length * 8;
  const padded = new Uint8Array(((msg.length + 9 + 63) >> 6) << 6);
  padded.set(msg);
  padded[msg.length] = 0x80;
  const dv = new DataView(padded.buffer);
  dv.setUint32(padded.length - 8, Math.floor(bitLen / 0x100000000));
  dv.setUint32(padded.length - 4, bitLen >>> 0);
  const H = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const W = new Uint32Array(64);
  const rotr = (x, n) => (x >>> n) | (x << (32 - n));
  for (let off = 0; off < padded.length; off += 64) {
    for (let t = 0; t < 16; t++) W[t] = dv.getUint32(off + 4 * t);
    for (let t = 16; t < 64; t++) {
      const s0 = rotr(W[t - 15], 7) ^ rotr(W[t - 15], 18) ^ (W[t - 15] >>> 3);
      const s1 = rotr(W[t - 2], 17) ^ rotr(W[t - 2], 19) ^ (W[t - 2] >>> 10);
      W[t] = W[t - 16] + s0 + W[t - 7] + s1;
    }
    let [a, b, c, d, e, f, g, h] = H;
    for (let t = 0; t < 64; t++) {
      const t1 = (h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[t] + W[t]) >>> 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      h = g; g = f; f = e; e = (d + t1) >>> 0;
      d = c; c = b; b = a; a = (t1 + t2) >>> 0;
    }
    H[0] += a; H[1] += b; H[2] += c; H[3] += d; H[4] += e; H[5] += f; H[6] += g; H[7] += h;
  }
  const out = new Uint8Array(32);
  const odv = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) odv.setUint32(4 * i, H[i]);
  return out;
}

// hmacPlain is HMAC-SHA256(key, data) with sha256Plain.
export function hmacPlain(key, data) {
  let k = bytes(key);
  if (k.length > 64) k = sha256Plain(k);
  const ipad = new Uint8Array(64).fill(0x36);
  const opad = new Uint8Array(64).fill(0x5c);
  for (let i = 0; i < k.length; i++) { ipad[i] ^= k[i]; opad[i] ^= k[i]; }
  const d = bytes(data);
  const inner = new Uint8Array(64 + d.length);
  inner.set(ipad); inner.set(d, 64);
  const outer = new Uint8Array(64 + 32);
  outer.set(opad); outer.set(sha256Plain(inner), 64);
  return sha256Plain(outer);
}

// ---------------------------------------------------------------------------------------------------------
// The primitives, from WebCrypto when the page has it.

export const usesWebCrypto = subtle !== null;

export async function sha256(data) {
  if (!subtle) return sha256Plain(data);
  return new Uint8Array(await subtle.digest("SHA-256", bytes(data)));
}

export async function hmac(key, data) {
  if (!subtle) return hmacPlain(key, data);
  const k = await subtle.importKey("raw", bytes(key), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await subtle.sign("HMAC", k, bytes(data)));
}

// ---------------------------------------------------------------------------------------------------------
// SigV4.

// uriEncode is SigV4's UriEncode: every byte but the unreserved characters (A-Z a-z 0-9 - _ . ~) as %XY in
// upper case; '/' kept when keepSlash.
export function uriEncode(s, keepSlash) {
  let out = "";
  for (const b of enc.encode(s)) {
    const c = String.fromCharCode(b);
    if (/[A-Za-z0-9\-_.~]/.test(c) || (keepSlash && c === "/")) out += c;
    else out += "%" + b.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

// amzDate formats a Date as X-Amz-Date: yyyyMMdd'T'HHmmss'Z'.
export function amzDate(d) {
  return d.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

// canonicalURI encodes the path as sent once more, as every AWS client but S3's does.
function canonicalURI(pathname) {
  return uriEncode(pathname || "/", true);
}

// canonicalQuery sorts the decoded parameters by encoded name, then value.
function canonicalQuery(params) {
  const pairs = [];
  for (const [k, v] of params) pairs.push([uriEncode(k, false), uriEncode(v, false)]);
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([k, v]) => k + "=" + v).join("&");
}

async function signingKey(secret, day, region, service) {
  let k = await hmac("AWS4" + secret, day);
  k = await hmac(k, region);
  k = await hmac(k, service);
  return hmac(k, "aws4_request");
}

async function signature(cred, date, canonical) {
  const t = amzDate(date);
  const day = t.slice(0, 8);
  const scope = `${day}/${cred.region}/${cred.service}/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", t, scope, hex(await sha256(canonical))].join("\n");
  const key = await signingKey(cred.secretAccessKey, day, cred.region, cred.service);
  return { t, scope, signature: hex(await hmac(key, toSign)) };
}

// signRequest returns the headers to send with a request signed in the Authorization header form: the
// given headers plus X-Amz-Date and Authorization. cred is {accessKeyId, secretAccessKey, region, service}.
// url is absolute; headers' names are signed with host (from url) and x-amz-date.
export async function signRequest(cred, { method, url, headers = {}, body = "", date = new Date() }) {
  const u = new URL(url);
  const t = amzDate(date);
  const all = { ...Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), String(v).trim().replace(/\s+/g, " ")])) };
  all.host = u.host;
  all["x-amz-date"] = t;
  const names = Object.keys(all).sort();
  const canonical = [
    method.toUpperCase(),
    canonicalURI(u.pathname),
    canonicalQuery(u.searchParams),
    names.map((n) => n + ":" + all[n] + "\n").join(""),
    names.join(";"),
    hex(await sha256(body)),
  ].join("\n");
  const s = await signature(cred, date, canonical);
  const out = { ...headers, "X-Amz-Date": t };
  out.Authorization = `AWS4-HMAC-SHA256 Credential=${cred.accessKeyId}/${s.scope}, SignedHeaders=${names.join(";")}, Signature=${s.signature}`;
  return out;
}
