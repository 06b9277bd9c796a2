// Anonymous matching: the keyed filters are computed here, in the browser, and only they are
// posted. The subjects and the exchange key are in fields without a name: a form never sends
// them. normalise() and the HMAC are those of broker/fiu/filters.py (keyed_filter), so a
// filter computed here equals the one the API client computes for the same key and subject.

// Python's str.casefold() beyond toLowerCase() for the letters names use.
const FOLDS = new Map([
  ["ß", "ss"],
  ["ẞ", "ss"],
  ["ς", "σ"],
]);

export function normalise(subject) {
  let text = subject.normalize("NFKD").replace(/\p{M}/gu, "");
  text = text.normalize("NFKC").toLowerCase();
  text = Array.from(text, (c) => FOLDS.get(c) ?? c).join("");
  text = text.replace(/[^\p{L}\p{N}_\s]/gu, " ");
  return text.split(/\s+/u).filter(Boolean).join(" ");
}

function hexToBytes(hex) {
  const clean = hex.trim().toLowerCase();
  if (!/^([0-9a-f]{2}){16,}$/.test(clean)) return null;
  return Uint8Array.from(clean.match(/../g), (b) => parseInt(b, 16));
}

function bytesToHex(bytes) {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

export async function keyedFilters(keyHex, subjects) {
  const raw = hexToBytes(keyHex);
  if (!raw) throw new Error("key");
  const key = await crypto.subtle.importKey(
    "raw",
    raw,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const encoder = new TextEncoder();
  const out = new Set();
  for (const subject of subjects) {
    if (!normalise(subject)) continue;
    const mac = await crypto.subtle.sign("HMAC", key, encoder.encode(normalise(subject)));
    out.add(bytesToHex(mac));
  }
  return [...out].sort();
}

const form = document.querySelector("form[data-matching]");
if (form instanceof HTMLFormElement) {
  const needed = document.getElementById("matching-needs-js");
  if (needed) needed.hidden = true;
  form.hidden = false;
  const key = form.querySelector("#match-key");
  const subjects = form.querySelector("#match-subjects");
  const filters = form.querySelector("#match-filters");
  const problem = form.querySelector("#match-key-error");
  const generate = form.querySelector("#match-generate");
  generate?.addEventListener("click", () => {
    key.value = bytesToHex(crypto.getRandomValues(new Uint8Array(32)));
  });
  async function compute() {
    problem.hidden = true;
    try {
      filters.value = (await keyedFilters(key.value, subjects.value.split("\n"))).join("\n");
      return true;
    } catch {
      problem.hidden = false;
      key.focus();
      return false;
    }
  }
  form.querySelector("#match-compute")?.addEventListener("click", compute);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (await compute()) form.submit();
  });
}
