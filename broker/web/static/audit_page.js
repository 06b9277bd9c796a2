// The audit explorer's check, run in the reader's browser: the checkpoint's signature against
// the log key the reader pinned (kept in this browser), every entry shown against that
// checkpoint, and the checkpoint against the last one this browser saw for the log. The page
// works without this script; it then says that nothing was checked.
import {
  VerificationError,
  equalBytes,
  fromBase64,
  leafHash,
  openCheckpoint,
  parseVerifierKey,
  toBase64,
  verifyConsistency,
  verifyInclusion,
} from "./auditlog.js";

const panel = document.getElementById("verification");
const KEY_PREFIX = "palermo.audit.key:";
const SEEN_PREFIX = "palermo.audit.seen:";
const encoder = new TextEncoder();

function say(name, values = {}) {
  const template = panel.dataset[name] ?? name;
  return template.replace(/\{(\w+)\}/g, (_, k) => String(values[k] ?? ""));
}

function reason(error) {
  return error instanceof VerificationError || error instanceof Error ? error.message : String(error);
}

function addCheck(list, ok, text) {
  const item = document.createElement("li");
  item.className = ok ? "check check-ok" : "check check-failed";
  const mark = document.createElement("span");
  mark.className = "check-mark";
  mark.setAttribute("aria-hidden", "true");
  mark.textContent = ok ? "\u2713" : "\u2717";
  const words = document.createElement("span");
  words.textContent = text;
  item.append(mark, " ", words);
  list.append(item);
}

function setStatus(state, text) {
  const status = document.getElementById("verify-status");
  status.className = `verify verify-${state}`;
  status.textContent = text;
  panel.dataset.result = state;
}

function setRow(row, ok, text) {
  const cell = row.querySelector(".entry-check");
  cell.textContent = "";
  const tag = document.createElement("span");
  tag.className = ok ? "tag tag-ok" : "tag tag-failed";
  tag.textContent = text;
  cell.append(tag);
  row.dataset.verified = ok ? "ok" : "failed";
}

// An entry's shown index, kind and message are the ones its verified leaf holds.
function checkShown(row, leaf) {
  const fields = JSON.parse(new TextDecoder().decode(leaf));
  for (const cell of row.querySelectorAll("[data-leaf-field]")) {
    const want = fields[cell.dataset.leafField] ?? "";
    const shown = cell.dataset.leafValue ?? cell.textContent.trim();
    if (String(want) !== shown) {
      throw new VerificationError(`the page shows ${cell.dataset.leafField} "${shown}", the leaf says "${want}"`);
    }
  }
}

async function checkEntries(checkpoint, checks) {
  const rows = [...document.querySelectorAll("[data-entry-index]")];
  let failed = 0;
  for (const row of rows) {
    try {
      const index = BigInt(row.dataset.entryIndex);
      const leaf = encoder.encode(row.querySelector(".leaf").textContent);
      const proof = (row.dataset.proof || "").split(" ").filter(Boolean).map(fromBase64);
      const shownHash = row.querySelector("[data-leaf-hash]");
      const hashed = await leafHash(leaf);
      if (shownHash && shownHash.dataset.leafHash !== toBase64(hashed)) {
        throw new VerificationError("the leaf hash shown is not the hash of the leaf shown");
      }
      if (BigInt(row.dataset.treeSize) !== checkpoint.size) {
        throw new VerificationError("the proof is for another tree than the checkpoint's");
      }
      await verifyInclusion(index, checkpoint.size, hashed, proof, checkpoint.root);
      checkShown(row, leaf);
      setRow(row, true, say("msgRowOk"));
    } catch (error) {
      failed += 1;
      setRow(row, false, say("msgRowFailed", { reason: reason(error) }));
    }
  }
  if (rows.length) {
    addCheck(
      checks,
      failed === 0,
      failed === 0
        ? say(rows.length === 1 ? "msgEntryOk" : "msgEntriesOk", { count: rows.length, size: checkpoint.size })
        : say("msgEntriesFailed", { count: failed, total: rows.length }),
    );
  }
  return failed === 0;
}

async function checkHistory(checkpoint, checks) {
  const storeKey = SEEN_PREFIX + checkpoint.origin;
  const seen = JSON.parse(localStorage.getItem(storeKey) || "null");
  const remember = () =>
    localStorage.setItem(
      storeKey,
      JSON.stringify({ size: checkpoint.size.toString(), root: toBase64(checkpoint.root), at: new Date().toISOString() }),
    );
  if (!seen) {
    remember();
    addCheck(checks, true, say("msgFirst", { size: checkpoint.size }));
    return true;
  }
  const old = BigInt(seen.size);
  const oldRoot = fromBase64(seen.root);
  try {
    if (old > checkpoint.size) {
      addCheck(checks, false, say("msgRollback", { old, new: checkpoint.size }));
      return false;
    }
    if (old === checkpoint.size) {
      if (!equalBytes(oldRoot, checkpoint.root)) {
        addCheck(checks, false, say("msgFork", { old, new: checkpoint.size, reason: "" }));
        return false;
      }
    } else {
      const url = `${panel.dataset.consistencyUrl}?old=${old}&new=${checkpoint.size}`;
      const answer = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!answer.ok) throw new VerificationError(`the node gave no consistency proof (HTTP ${answer.status})`);
      const body = await answer.json();
      await verifyConsistency(old, checkpoint.size, body.hashes.map(fromBase64), oldRoot, checkpoint.root);
    }
  } catch (error) {
    addCheck(checks, false, say("msgFork", { old, new: checkpoint.size, reason: reason(error) }));
    return false;
  }
  remember();
  if (old === checkpoint.size) addCheck(checks, true, say("msgSame", { size: old }));
  else addCheck(checks, true, say("msgConsistent", { old, new: checkpoint.size }));
  return true;
}

async function verifyPage() {
  const checks = document.getElementById("verify-checks");
  checks.textContent = "";
  const noteElement = document.getElementById("checkpoint-note");
  if (!noteElement) return;
  const note = noteElement.textContent;
  const origin = panel.dataset.origin;
  const pinned = localStorage.getItem(KEY_PREFIX + origin);
  showPinned(pinned);
  if (!pinned) {
    setStatus("pending", say("msgNoKey"));
    return;
  }
  let checkpoint;
  try {
    const key = await parseVerifierKey(pinned);
    checkpoint = await openCheckpoint(note, key);
    if (checkpoint.origin !== origin) {
      throw new VerificationError(`the checkpoint is for the log "${checkpoint.origin}"`);
    }
    const shown = document.querySelector("[data-checkpoint-size]");
    if (shown && BigInt(shown.dataset.checkpointSize) !== checkpoint.size) {
      throw new VerificationError("the size shown is not the signed size");
    }
    addCheck(checks, true, say("msgCheckpointOk", { size: checkpoint.size, name: key.name }));
  } catch (error) {
    addCheck(checks, false, say("msgCheckpointFailed", { reason: reason(error) }));
    setStatus("failed", say("msgFailed"));
    for (const row of document.querySelectorAll("[data-entry-index]")) setRow(row, false, say("msgRowUnchecked"));
    return;
  }
  const history = await checkHistory(checkpoint, checks);
  const entries = await checkEntries(checkpoint, checks);
  if (history && entries) setStatus("ok", say("msgAllOk"));
  else setStatus("failed", say("msgFailed"));
}

function showPinned(pinned) {
  const form = document.getElementById("pin-form");
  const shown = document.getElementById("pinned");
  form.hidden = Boolean(pinned);
  shown.hidden = !pinned;
  if (pinned) shown.querySelector("code").textContent = pinned;
}

async function pin(event) {
  event.preventDefault();
  const input = document.getElementById("pin-key");
  const error = document.getElementById("pin-error");
  try {
    const key = await parseVerifierKey(input.value);
    if (key.name !== panel.dataset.origin) {
      throw new VerificationError(say("msgOtherLog", { name: key.name, origin: panel.dataset.origin }));
    }
    localStorage.setItem(KEY_PREFIX + panel.dataset.origin, key.text);
    error.hidden = true;
    input.removeAttribute("aria-invalid");
    input.value = "";
    await verifyPage();
    document.getElementById("verify-status").focus();
  } catch (problem) {
    error.hidden = false;
    error.textContent = say("msgBadKey", { reason: reason(problem) });
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }
}

async function forget() {
  localStorage.removeItem(KEY_PREFIX + panel.dataset.origin);
  await verifyPage();
  document.getElementById("pin-key").focus();
}

if (panel) {
  document.getElementById("pin-form").addEventListener("submit", pin);
  document.getElementById("forget-key").addEventListener("click", forget);
  for (const hidden of panel.querySelectorAll("[data-script-only]")) hidden.hidden = false;
  verifyPage().catch((error) => setStatus("failed", say("msgFailed") + " " + reason(error)));
}
