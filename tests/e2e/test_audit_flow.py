"""The audit explorer in the browser: the page's own module (static/auditlog.js) verifies the
checkpoint's Ed25519 signature, every entry's RFC 9162 inclusion proof and the consistency with
the last checkpoint this browser saw, with WebCrypto, against the log key the reader pinned.

The module is first run on third-party vectors (tests/vectors: transparency-dev/merkle's
inclusion and consistency cases, C2SP and golang.org/x/mod/sumdb/note signed notes), then on
the node's pages: green when the answer is the node's, red when a proxy tampers with it, red
naming the sizes when the history this browser saw before is not the one served now."""

from __future__ import annotations

import base64
import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.conftest import PASSWORD, Api
from tests.e2e.conftest import check_page
from tests.integration.audit_helpers import run_scenario, sequence, verifier_key
from tests.integration.messaging_helpers import envelope

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
MERKLE = VECTORS / "merkle" / "transparency-dev" / "testdata"

RUN_VECTORS = """
async (v) => {
  const m = await import("/static/auditlog.js");
  const b = (x) => m.fromBase64(x ?? "");
  const wrong = [];
  const outcome = async (f) => { try { await f(); return false; } catch (e) { return true; } };
  for (const c of v.inclusion) {
    const failed = await outcome(() =>
      m.verifyInclusion(c.leafIdx, c.treeSize, b(c.leafHash), (c.proof ?? []).map(b), b(c.root)));
    if (failed !== c.wantErr) wrong.push(c.file);
  }
  for (const c of v.consistency) {
    const failed = await outcome(() =>
      m.verifyConsistency(c.size1, c.size2, (c.proof ?? []).map(b), b(c.root1), b(c.root2)));
    if (failed !== c.wantErr) wrong.push(c.file);
  }
  for (const c of v.notes) {
    for (const vkey of c.verifiers) {
      const key = await m.parseVerifierKey(vkey);
      const failed = await outcome(() => m.verifyNote(b(c.note_b64), key));
      if (failed !== c.wantErr) wrong.push(c.desc);
    }
  }
  for (const vkey of v.badKeys) {
    if (!(await outcome(() => m.parseVerifierKey(vkey)))) wrong.push(vkey);
  }
  return { wrong, counted: v.inclusion.length + v.consistency.length + v.notes.length };
}
"""


def _vectors() -> dict[str, Any]:
    def cases(kind: str) -> list[dict[str, Any]]:
        found = []
        for path in sorted((MERKLE / kind).rglob("*.json")):
            case = json.loads(path.read_text())
            case["file"] = str(path.relative_to(MERKLE))
            found.append(case)
        return found

    golang = json.loads((VECTORS / "signed-note" / "golang_mod_sumdb_note.json").read_text())
    c2sp = json.loads((VECTORS / "signed-note" / "c2sp_examples.json").read_text())
    example = c2sp["signed_note_example"]
    notes = [
        {
            "desc": c["desc"],
            "verifiers": c["verifiers"],
            "note_b64": c["note_b64"],
            "wantErr": "want_error" in c,
        }
        for c in golang["open_cases"]
        if c["verifiers"]
    ]
    notes.append(
        {
            "desc": "c2sp signed-note example",
            "verifiers": [example["vkey"]],
            "note_b64": base64.b64encode(example["note"].encode()).decode(),
            "wantErr": False,
        }
    )
    tampered = example["note"].replace("example message", "exemplary message")
    notes.append(
        {
            "desc": "c2sp example, text changed",
            "verifiers": [example["vkey"]],
            "note_b64": base64.b64encode(tampered.encode()).decode(),
            "wantErr": True,
        }
    )
    return {
        "inclusion": cases("inclusion"),
        "consistency": cases("consistency"),
        "notes": notes,
        "badKeys": [k["vkey"] for k in golang["bad_vkeys"]],
    }


def test_the_browsers_verifier_passes_the_third_party_vectors(page: Any) -> None:
    page.goto("/sign-in")
    vectors = _vectors()
    assert len(vectors["inclusion"]) > 50
    assert len(vectors["consistency"]) > 50
    result = page.evaluate(RUN_VECTORS, vectors)
    assert result["wrong"] == []
    assert result["counted"] == sum(len(vectors[k]) for k in ("inclusion", "consistency", "notes"))


def _sign_in(page: Any, login: str) -> None:
    page.goto("/sign-in?next=/audit")
    page.get_by_label("Login").fill(login)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.wait_for_url("**/audit")


def _status(page: Any) -> str:
    status = page.locator("#verify-status")
    page.wait_for_function(
        "() => ['ok', 'failed'].includes(document.getElementById('verification').dataset.result)"
    )
    return str(status.inner_text())


def test_oversight_pins_the_key_and_the_browser_verifies_every_entry(page: Any, api: Api) -> None:
    with ThreadPoolExecutor(1) as pool:  # Playwright holds this thread's event loop
        pool.submit(run_scenario, api, messages=2).result()
    _sign_in(page, "oversight")
    status = page.locator("#verify-status")
    assert "pin the log key" in status.inner_text()
    check_page(page, "audit-unpinned")

    # A key that is not one: said beside the field, the field keeps the focus.
    page.get_by_label("Log key to pin").fill("test.palermo+00000000+AAAA")
    page.get_by_label("Log key to pin").press("Enter")
    assert page.locator("#pin-error").is_visible()
    assert "not a usable log key" in page.locator("#pin-error").inner_text()

    page.get_by_label("Log key to pin").fill(verifier_key(api.settings))
    page.get_by_label("Log key to pin").press("Enter")
    assert _status(page) == "Verified in your browser: everything on this page."
    rows = page.locator("tr[data-entry-index]")
    assert rows.count() > 5
    assert page.locator('tr[data-verified="ok"]').count() == rows.count()
    assert (
        "first checkpoint of this log this browser has seen"
        in page.locator("#verify-checks").inner_text()
    )
    assert page.locator("#pinned").is_visible()
    check_page(page, "audit")

    # The log grows: the next visit checks the new checkpoint extends the one seen.
    seen = page.locator("[data-checkpoint-size]").get_attribute("data-checkpoint-size")
    with ThreadPoolExecutor(1) as pool:
        r = api.post("/v1/messages", as_="de.system", json=envelope(api.world.keys["de.bka"]))
        assert r.status_code == 202, r.text
        pool.submit(sequence, api.settings).result()
    page.reload()
    assert _status(page) == "Verified in your browser: everything on this page."
    grown = page.locator("[data-checkpoint-size]").get_attribute("data-checkpoint-size")
    assert int(grown) > int(seen)
    checks = page.locator("#verify-checks").inner_text()
    assert f"The log of size {grown} extends the log of size {seen}" in checks

    # One entry's page: its leaf and proof, verified too.
    page.locator("tr[data-entry-index] a").first.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/audit/entries/\d+$"))
    assert _status(page) == "Verified in your browser: everything on this page."
    assert page.get_by_role("heading", name="Inclusion proof").is_visible()
    check_page(page, "audit-entry")


def test_a_tampered_answer_turns_red(page: Any, api: Api) -> None:
    with ThreadPoolExecutor(1) as pool:
        pool.submit(run_scenario, api, messages=1).result()
    _sign_in(page, "oversight")
    page.evaluate(
        "([origin, key]) => localStorage.setItem('palermo.audit.key:' + origin, key)",
        [api.settings.node_id, verifier_key(api.settings)],
    )

    def change_one_leaf(route: Any) -> None:  # the test's proxy between browser and node
        response = route.fetch()
        body = re.sub(
            r'(<pre class="leaf">[^<]*?&#34;time&#34;:&#34;\d\d\d)(\d)',
            lambda m: m.group(1) + str((int(m.group(2)) + 1) % 10),
            response.text(),
            count=1,
        )
        route.fulfill(response=response, body=body)

    page.route(re.compile(r".*/audit$"), change_one_leaf)
    page.goto("/audit")
    assert _status(page) == "Verification failed: do not rely on this page."
    failed = page.locator('tr[data-verified="failed"]')
    assert failed.count() == 1
    assert "not in the tree of size" in failed.inner_text()
    assert (
        page.locator('tr[data-verified="ok"]').count()
        == page.locator("tr[data-entry-index]").count() - 1
    )
    check_page(page, "audit-tampered")
    page.unroute(re.compile(r".*/audit$"))


def test_a_split_view_or_rewritten_history_turns_red_naming_the_sizes(page: Any, api: Api) -> None:
    with ThreadPoolExecutor(1) as pool:
        pool.submit(run_scenario, api, messages=1).result()
    _sign_in(page, "oversight")
    origin, key = api.settings.node_id, verifier_key(api.settings)
    page.evaluate(
        "([origin, key]) => localStorage.setItem('palermo.audit.key:' + origin, key)", [origin, key]
    )
    page.reload()
    assert _status(page).startswith("Verified")
    size = int(page.locator("[data-checkpoint-size]").get_attribute("data-checkpoint-size"))

    # This browser saw a longer log before: the node now serves a shorter one.
    page.evaluate(
        "([origin, size]) => localStorage.setItem('palermo.audit.seen:' + origin,"
        " JSON.stringify({size: String(size), root: btoa('x'.repeat(32))}))",
        [origin, size + 5],
    )
    page.reload()
    assert _status(page).startswith("Verification failed")
    checks = page.locator("#verify-checks").inner_text()
    assert f"this browser saw the log at size {size + 5}, it now shows size {size}" in checks

    # This browser saw another tree of a smaller size: the served one does not extend it.
    page.evaluate(
        "([origin, size]) => localStorage.setItem('palermo.audit.seen:' + origin,"
        " JSON.stringify({size: String(size), root: btoa('y'.repeat(32))}))",
        [origin, size - 2],
    )
    page.reload()
    assert _status(page).startswith("Verification failed")
    checks = page.locator("#verify-checks").inner_text()
    assert f"the log of size {size} does not extend the log of size {size - 2}" in checks
    # A failed check does not overwrite what this browser saw.
    saw = page.evaluate(
        "(o) => JSON.parse(localStorage.getItem('palermo.audit.seen:' + o)).size", origin
    )
    assert saw == str(size - 2)
