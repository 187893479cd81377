// Drives the dashboard in Debian's headless Chromium through playwright-core.
// Usage: node dashboard.cjs <phase> <base-url> <login> <password> <screenshot-dir> <dsn> [hook]
// Phases: "triage" (log in, find the issue by keyboard, check what it shows, resolve it),
// "regression" (the issue came back), "alerts-setup" (a webhook channel to <hook>, its tests, a
// rule) and "alerts-history" (the notification of a new issue, listed on the alerts page and on
// the issue's page). Exits non-zero with a message on the first failure.
"use strict";
const { chromium } = require("playwright-core");

const [phase, base, login, password, shots, dsn, hook] = process.argv.slice(2);

// Console errors a phase causes on purpose: Chromium logs every 400 answer, and a refused form
// is one.
const expectedErrors = [];

// Sends one message event to the DSN, as an SDK would.
async function sendEvent(message) {
  const d = new URL(dsn);
  const event = {
    event_id: crypto.randomUUID().replace(/-/g, ""),
    timestamp: Date.now() / 1000,
    platform: "javascript",
    level: "error",
    message,
  };
  const r = await fetch(`${base}/api${d.pathname}/envelope/`, {
    method: "POST",
    headers: { "X-Sentry-Auth": `Sentry sentry_key=${d.username}, sentry_version=7` },
    body: `{}\n{"type":"event"}\n${JSON.stringify(event)}\n`,
  });
  check(r.ok, `the event was accepted (${r.status})`);
}

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

async function text(page, selector) {
  return (await page.locator(selector).allInnerTexts()).join("\n");
}

// Runs an action that submits a form and waits for the page it leads to.
async function submitted(page, action) {
  await Promise.all([page.waitForNavigation(), action()]);
}

async function logIn(page) {
  await page.goto(`${base}/issues/`);
  check(page.url().includes("/login?next="), `unauthenticated visit goes to login, got ${page.url()}`);
  await page.fill('input[name="login"]', login);
  await page.fill('input[name="password"]', password);
  await page.click('button[type="submit"]');
  await page.waitForURL(`${base}/issues/`);
}

async function triage(page) {
  await logIn(page);
  const list = await text(page, ".issues tbody");
  check(list.includes("RuntimeError: checkout failed for oops"), `the list shows the issue: ${list}`);
  check(await page.locator(".issue-row .badge.new").count() > 0, "new issues are badged");
  await page.screenshot({ path: `${shots}/issue-list.png`, fullPage: true });

  // Keyboard: "/" searches, j selects the first row, Enter opens it.
  await page.keyboard.press("/");
  check(await page.evaluate(() => document.activeElement.id) === "search", "/ focuses the search");
  await page.keyboard.type("is:unresolved RuntimeError");
  await page.keyboard.press("Enter");
  await page.waitForURL(/query=is%3Aunresolved\+RuntimeError/);
  check(await page.locator(".issue-row").count() === 1, "the search narrows the list to one issue");
  await page.keyboard.press("j");
  await page.keyboard.press("Enter");
  await page.waitForURL(/\/issues\/\d+\/$/);

  // The stack trace: chained exceptions, most recent first, with source context and variables.
  const types = await page.locator(".exc-type").allInnerTexts();
  check(JSON.stringify(types) === '["RuntimeError","ValueError"]', `chained exceptions in order: ${types}`);
  const stack = await text(page, "#stacktrace");
  check(stack.includes("invalid literal for int() with base 10: '12x'"), "the cause's message shows");
  check(stack.includes("parse_amount"), "frames name their functions");
  const cause = page.locator(".exception").nth(1);
  const failing = await cause.locator(".frame").first().locator(".source li.current").innerText();
  check(failing.includes("return int(raw)"), `the failing line is highlighted: ${failing}`);
  check(await page.locator(".frame.in-app").count() >= 3, "in-app frames are marked");
  await page.locator(".vars summary >> nth=0").click();
  check((await text(page, ".vars >> nth=0")).includes("raw"), "local variables show");

  // Breadcrumbs, tags, the user, contexts and why the events were grouped.
  const crumbs = await text(page, "#breadcrumbs");
  check(crumbs.includes("added sku-1") && crumbs.includes("GET /api/price"), `breadcrumbs: ${crumbs}`);
  const tags = await text(page, "#tags");
  check(tags.includes("component") && tags.includes("checkout") && tags.includes("100%"), `tags: ${tags}`);
  check((await text(page, "#user")).includes("seven@example.com"), "the user shows");
  check((await text(page, "#contexts")).includes("CPython"), "the runtime context shows");
  check((await text(page, "#grouping")).includes("app"), "the grouping variant shows");
  check((await text(page, "#times-seen")) === "2", "both events are counted");
  await page.screenshot({ path: `${shots}/issue-detail.png`, fullPage: true });

  // Older event and back: the two events of the issue.
  await page.keyboard.press("j");
  await page.waitForURL(/\?event=/);
  check((await text(page, ".exc-value >> nth=0")).includes("checkout failed for"), "the older event shows");

  // A comment and an assignee, recorded in the activity log.
  await page.fill('textarea[name="text"]', "Looking into it");
  await submitted(page, () => page.click('button[value="comment"]'));
  await page.selectOption('select[name="assignee"]', login);
  await submitted(page, () => page.click('button[value="assign"]'));
  const activity = await text(page, "#activity");
  check(activity.includes("Looking into it") && activity.includes(`assigned it to ${login}`), `activity: ${activity}`);

  // Resolve with the keyboard.
  await submitted(page, () => page.keyboard.press("r"));
  const status = (await text(page, "#status")).toLowerCase();
  check(status === "resolved", `the issue is resolved, got ${status} at ${page.url()}`);
  check((await text(page, "#activity")).includes("resolved it"), "the resolve is in the activity");

  // Dark mode follows the system setting.
  await page.emulateMedia({ colorScheme: "dark" });
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  check(bg === "rgb(20, 20, 24)", `dark background in dark mode, got ${bg}`);
  await page.screenshot({ path: `${shots}/issue-detail-dark.png`, fullPage: true });
}

async function regression(page) {
  await logIn(page);
  // Live updates: a new issue appears in the open list without a reload.
  await sendEvent("live update check");
  await page.locator(".issue-row", { hasText: "live update check" }).waitFor({ timeout: 15000 });
  const row = page.locator(".issue-row", { hasText: "RuntimeError: checkout failed" });
  check(await row.locator(".badge.regressed").count() === 1, "the list badges the regression");
  await row.locator("a.title").click();
  await page.waitForURL(/\/issues\/\d+\/$/);
  check((await text(page, "#status")).toLowerCase() === "unresolved", "a regression re-opens the issue");
  check(await page.locator("#regressed").isVisible(), "the issue page shows the regression");
  check((await text(page, "#times-seen")) === "4", "the new events are counted");
  check((await text(page, "#activity")).includes("re-opened it: a new event in shop@2.0.0 (regression)"), "the regression is in the activity");
  // Phone width: the page still fits.
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `no horizontal scrolling at phone width (${overflow}px too wide)`);
  await page.screenshot({ path: `${shots}/issue-regressed-phone.png`, fullPage: true });

  // The projects overview, with its copy buttons.
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto(`${base}/projects/`);
  check((await text(page, ".projects tbody")).includes("default"), "the overview lists the project");
  await page.click("[data-copy] >> nth=0");
  const copied = await text(page, "[data-copy] >> nth=0");
  check(copied === "Copied" || copied === "Press Ctrl+C", `the copy button answers, got ${copied}`);
  await page.click("a >> text=Settings");
  await page.waitForURL(/\/projects\/default\/$/);
  check((await text(page, "#setup")).includes("sentry_sdk.init("), "setup snippets show");
  await page.screenshot({ path: `${shots}/project-settings.png`, fullPage: true });
}

async function alertsSetup(page) {
  await logIn(page);
  // The project's settings lead to its alerts.
  await page.goto(`${base}/projects/default/`);
  await page.click("#alerts-link");
  await page.waitForURL(`${base}/projects/default/alerts/`);
  check((await text(page, "#history")).includes("No alerts yet"), "no alerts at first");

  // A signed webhook channel, by keyboard: the kind, then Tab from field to field, Enter sends.
  check(await page.locator("#channel-kind").inputValue() === "webhook", "webhook is the default kind");
  await page.focus("#channel-kind");
  await page.keyboard.press("Tab");
  check(await page.evaluate(() => document.activeElement.id) === "channel-name", "Tab goes from the kind to the name");
  await page.keyboard.type("ops hook");
  await page.keyboard.press("Tab");
  await page.keyboard.type(hook);
  await page.keyboard.press("Tab");
  check(await page.evaluate(() => document.activeElement.id) === "channel-secret", "then to the secret");
  await page.keyboard.type("s3cret");
  await submitted(page, () => page.keyboard.press("Enter"));
  check(/\/alerts\/\?done=channel-added/.test(page.url()), `redirected after the post, at ${page.url()}`);
  const added = await text(page, "#message");
  check(added.includes("Added the channel ops hook"), `the page says the channel was added: ${added}`);
  const channels = await text(page, "#channels");
  // Only the URL's host is shown: chat and on-call URLs carry their credentials in the path.
  const shown = hook.replace(/^(https?:\/\/[^/]+)\/.+$/, "$1/…");
  check(channels.includes("ops hook") && channels.includes(shown) && !channels.includes(hook) && channels.includes("signed"), `the channel is listed by its host, signed: ${channels}`);
  check(!(await page.content()).includes("s3cret"), "the secret is never shown");

  // The receiver refuses the first test: the page says what it answered. The second arrives.
  expectedErrors.push(/status of 400/);
  const test = page.locator("#channels tr", { hasText: "ops hook" }).locator("button", { hasText: "Send test" });
  await submitted(page, () => test.click());
  const refused = await text(page, "#message");
  check(refused.includes("answered 500"), `a failed test says what the receiver answered: ${refused}`);
  await submitted(page, () => test.click());
  const sent = await text(page, "#message");
  check(sent.includes("Sent a test notification to ops hook"), `the page says the test was sent: ${sent}`);

  // A frequency rule without its N is refused with what to fix, and the form keeps its choices.
  await page.selectOption("#rule-trigger", "frequency");
  await page.fill("#rule-minutes", "5");
  await page.check('#add-rule input[name="channel"]');
  await submitted(page, () => page.click('#add-rule button[type="submit"]'));
  const missing = await text(page, "#message");
  check(missing.includes("threshold"), `a frequency rule without N says so: ${missing}`);
  check(await page.locator("#rule-trigger").inputValue() === "frequency", "the refused form keeps the trigger");
  check(await page.locator('#add-rule input[name="channel"]').isChecked(), "and the ticked channel");

  // A rule for new issues on that channel.
  await page.selectOption("#rule-trigger", "new-issue");
  await submitted(page, () => page.click('#add-rule button[type="submit"]'));
  check((await text(page, "#message")).includes("Added the rule"), "the page says the rule was added");
  const rules = await text(page, "#rules");
  check(rules.includes("New issue") && rules.includes("ops hook") && rules.includes("30 minutes"), `the rule is listed: ${rules}`);
  await page.screenshot({ path: `${shots}/alerts.png`, fullPage: true });
}

async function alertsHistory(page) {
  await logIn(page);
  await page.goto(`${base}/projects/default/alerts/`);
  const history = await text(page, "#history");
  check(history.includes("New issue") && history.includes("KeyError: 'basket'") && history.includes("ops hook"), `the history lists the alert: ${history}`);
  const state = (await text(page, "#history .badge")).toLowerCase();
  check(state === "sent", `the alert was sent, got ${state}`);
  await page.emulateMedia({ colorScheme: "dark" });
  await page.screenshot({ path: `${shots}/alerts-history-dark.png`, fullPage: true });
  await page.emulateMedia({ colorScheme: "light" });

  // Its issue lists the alerts it caused.
  await page.click('#history a[href^="/issues/"]');
  await page.waitForURL(/\/issues\/\d+\/$/);
  const alerts = await text(page, "#alerts");
  check(alerts.includes("New issue") && alerts.includes("ops hook"), `the issue page lists its alert: ${alerts}`);
  const onIssue = (await text(page, "#alerts .badge")).toLowerCase();
  check(onIssue === "sent", `the issue page says it was sent, got ${onIssue}`);
  await page.screenshot({ path: `${shots}/issue-alerts.png`, fullPage: true });
}

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, colorScheme: "light" });
    page.setDefaultTimeout(15000);
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("console", (m) => {
      if (m.type() === "error" && !expectedErrors.some((e) => e.test(m.text()))) errors.push(m.text());
    });
    if (phase === "triage") await triage(page);
    else if (phase === "regression") await regression(page);
    else if (phase === "alerts-setup") await alertsSetup(page);
    else if (phase === "alerts-history") await alertsHistory(page);
    else throw new Error(`unknown phase ${phase}`);
    check(errors.length === 0, `no script or CSP errors in the page: ${errors.join("; ")}`);
  } finally {
    await browser.close();
  }
})().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
