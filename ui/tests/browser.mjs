// The dashboard in a real browser: Debian's headless Chromium driven by
// playwright-core. Run by tests/it/ui.rs (`cargo test --release`) against
// a server it started with a recorded call:
//
//   node ui/tests/browser.mjs <base-url> <admin-token>
//
// with HOTLINE_UI_CALL_SID (the recorded call), HOTLINE_UI_WORD (a word of
// its transcript), HOTLINE_UI_LIVE_SID (the call placed when this script
// prints "waiting for a live call"), HOTLINE_UI_GUEST (a component to push)
// and HOTLINE_UI_SCREENSHOTS (where each page's screenshot goes). Exits 1
// on the first failed step, or when the browser logged any error.

import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [base, token] = process.argv.slice(2);
const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const sid = env("HOTLINE_UI_CALL_SID");
const word = env("HOTLINE_UI_WORD");
const instance = env("HOTLINE_UI_INSTANCE");
const liveSid = env("HOTLINE_UI_LIVE_SID");
const guest = env("HOTLINE_UI_GUEST");
const shots = env("HOTLINE_UI_SCREENSHOTS");
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
if (!base || !token) throw new Error("usage: node browser.mjs <base-url> <admin-token>");
mkdirSync(shots, { recursive: true });

// The machine has no internet and we may run as root: no sandbox, nothing
// that phones home, a profile of our own.
const profile = mkdtempSync(join(tmpdir(), "hotline-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  viewport: { width: 1280, height: 900 },
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});

const errors = [];
// Resources expected to fail while a step runs: the wrong-token sign-in's
// 401 and the check that it left no session, which Chromium logs as
// "Failed to load resource".
let expectedFailures = [];
const page = context.pages()[0] ?? (await context.newPage());
page.on("console", (msg) => {
  if (msg.type() !== "error") return;
  const url = msg.location().url ?? "";
  if (expectedFailures.some((path) => url.endsWith(path))) return;
  errors.push(`console: ${msg.text()} (${url})`);
});
page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
page.on("requestfailed", (r) => {
  const error = r.failure()?.errorText;
  // The overview closes its live stream when it goes (another page, a
  // navigation): Chromium reports that as an aborted request.
  if (new URL(r.url()).pathname === "/api/live" && error === "net::ERR_ABORTED") return;
  errors.push(`request failed: ${r.url()} ${error}`);
});

let passed = 0;
const steps = [];
async function step(name, body) {
  const started = Date.now();
  try {
    await body();
  } catch (e) {
    console.error(`FAIL ${name}: ${e instanceof Error ? e.message : e}`);
    await page.screenshot({ path: join(shots, "failure.png"), fullPage: true }).catch(() => {});
    await context.close();
    rmSync(profile, { recursive: true, force: true });
    process.exit(1);
  }
  passed += 1;
  steps.push(name);
  console.log(`ok ${name} (${Date.now() - started} ms)`);
}
function check(condition, message) {
  if (!condition) throw new Error(message);
}
async function shot(name) {
  const path = join(shots, `${name}.png`);
  // No hover effects left where the last click was.
  await page.mouse.move(0, 0);
  await page.screenshot({ path, fullPage: true });
  console.log(`screenshot ${path}`);
}
const timeout = { timeout: 15_000 };

await step("a page without a session redirects to sign-in", async () => {
  await page.goto(`${base}/app/calls`);
  await page.waitForURL(`${base}/app/login`, timeout);
  await page.getByLabel("Admin token").waitFor(timeout);
  await shot("login");
});

await step("a wrong token is refused", async () => {
  expectedFailures = ["/api/auth/login", "/api/auth/me"];
  await page.getByLabel("Admin token").fill("not-the-token-at-all-0000");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("alert").filter({ hasText: "not the admin token" }).waitFor(timeout);
  check(page.url() === `${base}/app/login`, `still on the sign-in page, not ${page.url()}`);
  const me = await page.evaluate(() => fetch("/api/auth/me").then((r) => r.status));
  check(me === 401, `no session after a wrong token: /api/auth/me gave ${me}`);
  await shot("login-refused");
});

await step("the admin token signs in", async () => {
  await page.getByLabel("Admin token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}/app/`, timeout);
  expectedFailures = [];
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === "hotline_session");
  check(session?.httpOnly && session.sameSite === "Strict", `session cookie: ${JSON.stringify(session)}`);
  const canRead = await page.evaluate(() => document.cookie.includes("hotline_session"));
  check(!canRead, "the session cookie is HttpOnly: scripts cannot read it");
});

await step("the overview shows today's calls, the active guest and the service", async () => {
  await page.getByTestId("calls-today").getByText("caller hung up: 1").waitFor(timeout);
  await page.getByTestId("active-guest").locator(".font-mono").waitFor(timeout);
  await page.getByTestId("service").getByText("Live calls").waitFor(timeout);
  await page.getByTestId("call-link").filter({ hasText: sid }).waitFor(timeout);
  const row = page.getByTestId("call-table").locator("tr", { hasText: sid });
  const served = await row.getByTestId("call-instance").innerText();
  check(served === instance, `the call's row names the instance that served it: ${served}`);
  // The recorded call had a turn: its end of utterance → first audio is known.
  await page.getByTestId("latency").getByText(/\d+ ms/).first().waitFor(timeout);
  await page.getByTestId("live-calls").getByText("No calls in progress.").waitFor(timeout);
  await shot("overview");
});

await step("a simulated call appears live and ends", async () => {
  // tests/it/ui.rs places the call when it reads this line.
  console.log("waiting for a live call");
  const row = page.getByTestId("live-call").filter({ hasText: liveSid });
  await row.waitFor({ timeout: 30_000 });
  await page.getByTestId("service").getByText(/Live calls 1 \//).waitFor(timeout);
  // Follow the row until the call ends, without a reload: its state changes
  // (a greeting, a question heard, the answer), its duration ticks, and
  // the question counts as a turn.
  const states = new Set();
  const durations = new Set();
  const turns = new Set();
  const deadline = Date.now() + 30_000;
  for (;;) {
    const cells = await row.locator("td").allInnerTexts();
    if (cells.length === 0) break; // the row is gone: the call ended
    const [, , state, duration, turn] = cells;
    states.add(state);
    turns.add(turn);
    if (!durations.has(duration) && durations.size === 1) await shot("overview-live");
    durations.add(duration);
    check(Date.now() < deadline, "the call ends within 30 s");
    await page.waitForTimeout(100);
  }
  check([...states].every((s) => ["listening", "thinking", "speaking"].includes(s)), `states: ${[...states]}`);
  check(states.size >= 2, `the row followed the call's state: ${[...states]}`);
  check(durations.size >= 2, `the duration ticked: ${[...durations]}`);
  check(turns.has("1"), `the question counted as a turn: ${[...turns]}`);
  const seen = (set) => [...set].join(", ");
  console.log(`live call: states ${seen(states)}; durations ${seen(durations)}; turns ${seen(turns)}`);
  // Ended, it joins the latest calls once its record is written.
  await page.getByTestId("call-link").filter({ hasText: liveSid }).waitFor(timeout);
});

await step("the call is listed in Calls", async () => {
  await page.getByRole("link", { name: "Calls", exact: true }).click();
  await page.waitForURL(`${base}/app/calls`, timeout);
  await page.getByTestId("call-link").filter({ hasText: sid }).waitFor(timeout);
  await shot("calls");
});

await step("searching finds the call by a word of its transcript, and not by another", async () => {
  const box = page.getByPlaceholder("Words in a transcript or a reply");
  await box.fill("zebra");
  await page.getByRole("button", { name: "Search" }).click();
  await page.waitForURL(`${base}/app/calls?q=zebra`, timeout);
  await page.getByText("No calls.").waitFor(timeout);
  await box.fill(word);
  await page.getByRole("button", { name: "Search" }).click();
  await page.waitForURL(`${base}/app/calls?q=${encodeURIComponent(word)}`, timeout);
  await page.getByTestId("call-link").filter({ hasText: sid }).waitFor(timeout);
  await shot("calls-search");
});

await step("the call's detail page shows its record, timeline and transcript", async () => {
  await page.getByTestId("call-link").filter({ hasText: sid }).click();
  await page.waitForURL(`${base}/app/calls/${sid}`, timeout);
  await page.getByTestId("record").waitFor(timeout);
  await page.getByTestId("timeline").waitFor(timeout);
  check((await page.getByTestId("lane-caller").count()) > 0, "the timeline has caller speech");
  check((await page.getByTestId("lane-agent").count()) > 0, "the timeline has agent replies");
  const transcript = await page.getByTestId("transcript").innerText();
  check(transcript.toLowerCase().includes(word.toLowerCase()), `the transcript shows "${word}": ${transcript}`);
  const src = await page.getByTestId("recording").getAttribute("src", timeout);
  check(src, "the recording's player has a source");
  const wav = await page.evaluate(async (url) => {
    const r = await fetch(url);
    return { status: r.status, type: r.headers.get("content-type"), bytes: (await r.arrayBuffer()).byteLength };
  }, src);
  check(
    wav.status === 200 && wav.type === "audio/wav" && wav.bytes > 44,
    `the recording answers 200 audio/wav with audio: ${JSON.stringify(wav)}`,
  );
  await shot("call-detail");
});

await step("a deep link loads the detail page directly", async () => {
  await page.goto(`${base}/app/calls/${sid}`);
  await page.getByTestId("timeline").waitFor(timeout);
});

await step("a component is pushed and rolled back", async () => {
  await page.getByRole("link", { name: "Guests" }).click();
  await page.waitForURL(`${base}/app/guests`, timeout);
  const active = page.getByTestId("active-version").locator("td").first();
  await active.waitFor(timeout);
  const before = await active.innerText();
  await page.locator('input[type="file"]').setInputFiles(guest);
  await page.getByRole("button", { name: "Push" }).click();
  await page.getByTestId("notice").filter({ hasText: "Pushed" }).waitFor(timeout);
  await page.waitForFunction(
    (b) => document.querySelector('[data-testid="active-version"] td')?.textContent !== b,
    before,
    timeout,
  );
  check((await page.getByTestId("version").count()) >= 1, "the previous version is listed");
  await shot("guests-pushed");
  await page.getByRole("button", { name: "Roll back" }).click();
  await page.getByTestId("notice").filter({ hasText: "Rolled back" }).waitFor(timeout);
  await page.waitForFunction(
    (b) => document.querySelector('[data-testid="active-version"] td')?.textContent === b,
    before,
    timeout,
  );
  await shot("guests");
  await page.getByRole("link", { name: "Overview" }).click();
  await page.getByTestId("last-rollback").waitFor(timeout);
});

await step("signing out ends the session", async () => {
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(`${base}/app/login`, timeout);
  await page.goto(`${base}/app/guests`);
  await page.waitForURL(`${base}/app/login`, timeout);
});

await step("no errors in the browser console", async () => {
  check(errors.length === 0, errors.join("\n"));
});

await context.close();
rmSync(profile, { recursive: true, force: true });
console.log(`browser: ${passed} passed, 0 failed`);
