// Open each page of the built book in Debian's Chromium and report what a reader gets.
//
// Usage: node check_pages.mjs '{"baseUrl": "http://127.0.0.1:PORT/", "pages": ["book/intro.html", ...],
//                              "screenshots": "/abs/dir", "chromium": "/usr/bin/chromium"}'
//
// Prints one JSON object: {"pages": [{page, status, mathjax, math, typeset, ...}, ...]}.
// It only collects facts (tests/test_browser.py asserts on them) and saves a full-page
// screenshot of each page. Requests to any host other than the local server are blocked
// and listed: the book must work with no network.
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const options = JSON.parse(process.argv[2]);
const base = new URL(options.baseUrl);

// As root, with no network: no sandbox, no GPU, nothing that phones home.
const FLAGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

const profile = mkdtempSync(join(tmpdir(), "book-chromium-")); // a fresh --user-data-dir
mkdirSync(options.screenshots, { recursive: true });
const context = await chromium.launchPersistentContext(profile, {
  executablePath: options.chromium,
  headless: true,
  args: FLAGS,
  viewport: { width: 1280, height: 900 },
});

const report = [];
try {
  for (const name of options.pages) {
    const page = await context.newPage();
    const facts = {
      page: name, external: [], failed: [], httpErrors: [], consoleErrors: [], pageErrors: [],
    };
    await page.route("**/*", (route) => {
      const url = new URL(route.request().url());
      if (url.host === base.host || url.protocol === "data:" || url.protocol === "blob:") return route.continue();
      facts.external.push(url.href);
      return route.abort("blockedbyclient");
    });
    page.on("requestfailed", (request) => {
      if (new URL(request.url()).host === base.host) facts.failed.push(`${request.url()}: ${request.failure()?.errorText}`);
    });
    page.on("response", (response) => {
      if (response.status() >= 400) facts.httpErrors.push(`${response.status()} ${response.url()}`);
    });
    page.on("console", (message) => { if (message.type() === "error") facts.consoleErrors.push(message.text()); });
    page.on("pageerror", (error) => facts.pageErrors.push(String(error)));

    const address = new URL(name, base).href;
    // A redirect page (the site's index.html) moves on by itself: check where it lands.
    const redirects = /<meta[^>]+http-equiv="refresh"/i.test(await (await context.request.get(address)).text());
    const response = await page.goto(address, { waitUntil: "load", timeout: 60_000 });
    facts.status = response?.status() ?? null;
    if (redirects) {
      if (page.url() === address) await page.waitForURL((url) => url.href !== address, { timeout: 30_000 });
      await page.waitForLoadState("load");
    }
    facts.url = page.url();
    Object.assign(facts, await page.evaluate(async () => {
      // MathJax replaces window.MathJax (the configuration) with itself once it has loaded;
      // startup.promise resolves when the first typesetting pass is over.
      const scripts = [...document.scripts].map((s) => s.src).filter((src) => src.includes("mathjax"));
      const mathjax = Boolean(window.MathJax && window.MathJax.startup);
      if (mathjax) await window.MathJax.startup.promise;
      const images = [...document.images];
      images.forEach((img) => { img.loading = "eager"; });
      await Promise.all(images.map((img) => (img.complete ? null : new Promise((done) => {
        img.addEventListener("load", done); img.addEventListener("error", done); setTimeout(done, 15_000);
      }))));
      const math = [...document.querySelectorAll(".math")];
      const text = document.body.innerText;
      return {
        title: document.title,
        mathjaxScripts: scripts,
        mathjax,
        mathjaxVersion: mathjax ? window.MathJax.version : null,
        math: math.length,
        typeset: math.filter((el) => el.querySelector("mjx-container")).length,
        untypeset: math.filter((el) => !el.querySelector("mjx-container")).map((el) => el.textContent.slice(0, 80)),
        mjxContainers: document.querySelectorAll("mjx-container").length,
        mathErrors: [...document.querySelectorAll("mjx-merror")].map((el) => el.getAttribute("data-mjx-error") || el.textContent),
        images: images.map((img) => ({ src: img.getAttribute("src"), complete: img.complete, naturalWidth: img.naturalWidth })),
        // Python's and IPython's tracebacks both carry this line.
        traceback: text.split("\n").filter((line) => line.includes("Traceback (most recent call last)")).slice(0, 5),
        errorOutputs: document.querySelectorAll(".cell_output .output.traceback, .cell_output .output.error").length,
        notebookLink: document.querySelector("a.btn-download-notebook-button")?.getAttribute("href") ?? null,
        // Code and outputs that do not fit their box (the reader would have to scroll sideways);
        // a box in a tab that is not shown has no width and is not measured.
        overflowing: [...document.querySelectorAll(".cell_input pre, .cell_output pre, .cell_output .output, div.highlight pre")]
          .filter((el) => el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1)
          .map((el) => ({
            widest: el.textContent.split("\n").reduce((a, b) => (b.length > a.length ? b : a), "").slice(0, 100),
            scrollWidth: el.scrollWidth, clientWidth: el.clientWidth,
          })),
        height: document.documentElement.scrollHeight,
      };
    }));
    const shot = join(options.screenshots, name.replace(/\.html$/, "").replaceAll("/", "__") + ".png");
    await page.screenshot({ path: shot, fullPage: true });
    facts.screenshot = shot;
    report.push(facts);
    await page.close();
  }
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify({ pages: report }));
