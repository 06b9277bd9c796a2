// Verifying Palermo's audit log in the reader's own browser, with WebCrypto only (SHA-256 and
// Ed25519): nothing here trusts the server that sent the page.
//
// - RFC 9162 section 2.1.3.2 (inclusion) and 2.1.4.2 (consistency) Merkle proofs, over
//   leaf hashes SHA-256(0x00 || leaf) and node hashes SHA-256(0x01 || left || right);
// - C2SP signed notes (c2sp.org/signed-note) and checkpoints (c2sp.org/tlog-checkpoint):
//   a verifier key "<name>+<8 hex key id>+<base64(0x01 || public key)>", whose key id is the
//   first four bytes of SHA-256(name || 0x0A || 0x01 || public key).
//
// The same rules as the Python verifier (audit/merkle.py, audit/note.py): a consistency proof
// from the empty tree is an error; every hash is 32 bytes; a note's text ends at its last
// blank line. Every failure throws a VerificationError whose message says what did not hold.

export class VerificationError extends Error {
  constructor(message) {
    super(message);
    this.name = "VerificationError";
  }
}

const HASH_SIZE = 32;
const MAX_TREE_SIZE = (1n << 64n) - 1n;
const ED25519 = 0x01;
const encoder = new TextEncoder();

export function fromBase64(text) {
  if (typeof text !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4) {
    throw new VerificationError(`not standard base64: ${String(text).slice(0, 40)}`);
  }
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

export function toBase64(bytes) {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

export async function sha256(...parts) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", concat(...parts)));
}

export function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i += 1) diff |= a[i] ^ b[i];
  return diff === 0;
}

export const leafHash = (leaf) => sha256(Uint8Array.of(0), leaf);
const nodeHash = (left, right) => sha256(Uint8Array.of(1), left, right);

function size(name, value) {
  const n = BigInt(value);
  if (n < 0n || n > MAX_TREE_SIZE) throw new VerificationError(`${name} ${n} is not in 0..2^64-1`);
  return n;
}

function hash(name, value) {
  if (!(value instanceof Uint8Array) || value.length !== HASH_SIZE) {
    throw new VerificationError(`${name} is not a ${HASH_SIZE}-byte hash`);
  }
  return value;
}

const odd = (n) => (n & 1n) === 1n;

/** The root an RFC 9162 inclusion proof gives leaf hash `leaf` at `index` of a tree of `treeSize`. */
export async function rootFromInclusionProof(index, treeSize, leaf, proof) {
  let fn = size("leaf index", index);
  let sn = size("tree size", treeSize);
  if (fn >= sn) throw new VerificationError(`leaf index ${fn} is not in a tree of size ${sn}`);
  sn -= 1n;
  let r = hash("the leaf hash", leaf);
  for (const [position, p] of proof.entries()) {
    hash(`proof hash ${position}`, p);
    if (sn === 0n) throw new VerificationError("the inclusion proof has too many hashes");
    if (odd(fn) || fn === sn) {
      r = await nodeHash(p, r);
      if (!odd(fn)) {
        while (!odd(fn) && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new VerificationError("the inclusion proof has too few hashes");
  return r;
}

/** Throws unless `leaf` is at `index` of the tree of `treeSize` whose root is `root`. */
export async function verifyInclusion(index, treeSize, leaf, proof, root) {
  hash("the root", root);
  const computed = await rootFromInclusionProof(index, treeSize, leaf, proof);
  if (!equalBytes(computed, root)) {
    throw new VerificationError(
      `entry ${index} is not in the tree of size ${treeSize}: the proof leads to another root`,
    );
  }
}

/** Throws unless the tree of `size2` with `root2` extends the tree of `size1` with `root1`. */
export async function verifyConsistency(size1, size2, proof, root1, root2) {
  let s1 = size("size1", size1);
  const s2 = size("size2", size2);
  if (s1 > s2) throw new VerificationError(`size ${s1} is larger than size ${s2}`);
  if (s1 === 0n) throw new VerificationError("there is no consistency proof from the empty tree");
  if (s1 === s2) {
    if (proof.length) throw new VerificationError(`sizes are equal (${s1}): the proof must be empty`);
    if (!equalBytes(root1, root2)) {
      throw new VerificationError(`two different trees of the same size ${s1}`);
    }
    return;
  }
  hash("root1", root1);
  hash("root2", root2);
  proof.forEach((p, position) => hash(`proof hash ${position}`, p));
  if (!proof.length) throw new VerificationError(`the proof from ${s1} to ${s2} is empty`);
  // A size1 that is a power of two: the old root starts the chain.
  const chain = (s1 & (s1 - 1n)) === 0n ? [root1, ...proof] : [...proof];
  let fn = s1 - 1n;
  let sn = s2 - 1n;
  while (odd(fn)) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr = chain[0];
  let sr = chain[0];
  for (const c of chain.slice(1)) {
    if (sn === 0n) throw new VerificationError("the consistency proof has too many hashes");
    if (odd(fn) || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      if (!odd(fn)) {
        while (!odd(fn) && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new VerificationError("the consistency proof has too few hashes");
  if (!equalBytes(fr, root1)) {
    throw new VerificationError(`the proof does not lead to the root of the tree of size ${s1}`);
  }
  if (!equalBytes(sr, root2)) {
    throw new VerificationError(`the proof does not lead to the root of the tree of size ${s2}`);
  }
}

/** A verifier key "<name>+<hex id>+<base64>" parsed and its key id checked. */
export async function parseVerifierKey(text) {
  const key = String(text).trim();
  const match = /^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)$/.exec(key);
  if (!match) throw new VerificationError("a log key reads <name>+<8 hex digits>+<base64>");
  const [, name, hexId, encoded] = match;
  const raw = fromBase64(encoded);
  if (raw.length !== 33 || raw[0] !== ED25519) {
    throw new VerificationError("the log key is not an Ed25519 key (type 0x01, 32 bytes)");
  }
  const digest = await sha256(encoder.encode(`${name}\n`), raw);
  const keyId = ((digest[0] << 24) | (digest[1] << 16) | (digest[2] << 8) | digest[3]) >>> 0;
  if (keyId !== Number.parseInt(hexId, 16)) {
    throw new VerificationError("the log key's id does not match its name and public key");
  }
  const publicKey = await crypto.subtle.importKey(
    "raw",
    raw.slice(1),
    { name: "Ed25519" },
    false,
    ["verify"],
  );
  return { text: key, name, keyId, publicKey };
}

const MAX_SIGNATURES = 100;

/** A signed note split into its text and signature lines; strict, like audit/note.py. */
export function parseNote(note) {
  if (note instanceof Uint8Array) {
    try {
      note = new TextDecoder("utf-8", { fatal: true }).decode(note);
    } catch {
      throw new VerificationError("the note is not valid UTF-8");
    }
  }
  if (typeof note !== "string" || !note.endsWith("\n")) {
    throw new VerificationError("the note does not end in a newline");
  }
  if (/[\u0000-\u0009\u000b-\u001f]/.test(note)) {
    throw new VerificationError("the note holds a control character");
  }
  const split = note.lastIndexOf("\n\n");
  if (split < 0) throw new VerificationError("the note has no signature block");
  const text = note.slice(0, split + 1);
  const lines = note.slice(split + 2, -1).split("\n");
  if (lines.length > MAX_SIGNATURES) {
    throw new VerificationError(`a note carries at most ${MAX_SIGNATURES} signatures`);
  }
  const signatures = lines.map((line) => {
    const match = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/.exec(line);
    if (!match) throw new VerificationError("a signature line of the note is malformed");
    const raw = fromBase64(match[2]);
    if (raw.length < 5) throw new VerificationError("a signature line of the note is too short");
    const keyId = ((raw[0] << 24) | (raw[1] << 16) | (raw[2] << 8) | raw[3]) >>> 0;
    return { name: match[1], keyId, signature: raw.slice(4) };
  });
  return { text, signatures };
}

/**
 * Check a signed note's signature by `key` (from parseVerifierKey): { text, others }, where
 * `others` names the other signers (witnesses), whose lines are kept but not checked here.
 */
export async function verifyNote(note, key) {
  const { text, signatures } = parseNote(note);
  const mine = (s) => s.name === key.name && s.keyId === key.keyId;
  const ours = signatures.filter(mine);
  if (!ours.length) throw new VerificationError(`the note is not signed by the pinned key ${key.name}`);
  for (const s of ours) {
    const good = await crypto.subtle.verify({ name: "Ed25519" }, key.publicKey, s.signature, encoder.encode(text));
    if (!good) throw new VerificationError(`invalid signature for key ${key.name}`);
  }
  return { text, others: signatures.filter((s) => !mine(s)).map((s) => s.name) };
}

/** A checkpoint note verified against the pinned log key: { origin, size, root, others }. */
export async function openCheckpoint(note, key) {
  const { text, others } = await verifyNote(note, key);
  const lines = text.slice(0, -1).split("\n");
  if (lines.length < 3 || !/^(0|[1-9][0-9]*)$/.test(lines[1]) || lines.includes("")) {
    throw new VerificationError("the checkpoint's body is not origin, size and root hash");
  }
  const root = fromBase64(lines[2]);
  hash("the checkpoint's root", root);
  return { origin: lines[0], size: size("tree size", lines[1]), root, others };
}
