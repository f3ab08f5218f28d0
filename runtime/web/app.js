// The page of `vae-gen serve`: it uses only the public HTTP API, as any other client does.
"use strict";

const $ = (id) => document.getElementById(id);
//: Sliders shown: the most active latent dimensions, at most this many.
const SLIDERS = 8;
//: Milliseconds a slider must rest before its latent is decoded again.
const DEBOUNCE_MS = 40;

let models = [];

function headers(json) {
  const result = json ? { "Content-Type": "application/json" } : {};
  const key = $("key").value.trim();
  if (key) result.Authorization = `Bearer ${key}`;
  return result;
}

async function call(path, options = {}) {
  const response = await fetch(path, options);
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).error.message; } catch (_) { /* not JSON: keep the status */ }
    throw new Error(message);
  }
  return response;
}

const getJson = async (path) => (await call(path, { headers: headers(false) })).json();

function say(text, isError = false, where = "status") {
  $(where).textContent = text;
  $(where).className = `${where === "status" ? "" : "panel-status"}${isError ? " error" : ""}`.trim();
}

async function loadModels() {
  ({ models } = await getJson("/v1/models"));
  $("model").replaceChildren(...models.map((m) => new Option(`${m.name}${m.default ? " (default)" : ""}`, m.name, m.default, m.default)));
  showClasses(currentModel());
  say(`${models.length} model${models.length === 1 ? "" : "s"} ready.`);
  explore();
  interpolate();
}

const currentModel = () => models.find((m) => m.name === $("model").value) || models[0];
const modelPath = () => `/v1/models/${encodeURIComponent($("model").value)}`;
const temperature = () => Number($("temperature").value);

function showClasses(model) {
  const classes = (model && model.classes) || [];
  $("class-field").hidden = classes.length === 0;
  $("guidance-field").hidden = classes.length === 0;
  $("class").replaceChildren(...classes.map((name) => new Option(name, name)));
}

function withClass(body) {
  if (!$("class-field").hidden) Object.assign(body, { class: $("class").value, guidance: Number($("guidance").value) });
  return body;
}

function request(format) {
  const body = {
    model: $("model").value,
    n: Number($("count").value),
    seed: Number($("seed").value),
    start: Number($("start").value),
    temperature: temperature(),
    format,
  };
  return { method: "POST", headers: headers(true), body: JSON.stringify(withClass(body)) };
}

/** The decoded images of latent vectors [[...], ...], as data: URLs of their PNGs (POST /v1/decode). */
async function decode(latents) {
  const body = withClass({ model: $("model").value, latents, format: "json" });
  const reply = await call("/v1/decode", { method: "POST", headers: headers(true), body: JSON.stringify(body) });
  return (await reply.json()).images.map(({ png }) => `data:image/png;base64,${png}`);
}

// -- the grid --------------------------------------------------------------------------------------------

async function generate(event) {
  event.preventDefault();
  $("generate").disabled = true;
  say("Generating...");
  // What the images are, as asked: the fields may change while the request runs.
  const [seed, start, imagesPath] = [$("seed").value, $("start").value, `${modelPath()}/images/${$("seed").value}`];
  const classQuery = `&class=${encodeURIComponent($("class").value)}&guidance=${encodeURIComponent($("guidance").value)}`;
  const query = `?temperature=${$("temperature").value}${$("class-field").hidden ? "" : classQuery}`;
  try {
    const { images } = await (await call("/v1/generate", request("json"))).json();
    $("images").replaceChildren(...images.map(({ index, png }) => {
      const figure = document.createElement("figure");
      const link = document.createElement("a");
      link.href = `${imagesPath}/${index}.png${query}`;
      const img = new Image();
      img.src = `data:image/png;base64,${png}`;
      img.alt = `image ${index}`;
      img.className = "zoomable";
      link.append(img);
      link.addEventListener("click", (click) => {
        click.preventDefault();
        view(img, `image ${index} of seed ${seed}`, `seed${seed}-${String(index).padStart(6, "0")}.png`, link.href,
          { seed, index });
      });
      const caption = document.createElement("figcaption");
      caption.textContent = String(index);
      figure.append(link, caption);
      return figure;
    }));
    const zip = await (await call("/v1/generate", request("zip"))).blob();
    $("download").href = URL.createObjectURL(zip);
    $("download").hidden = false;
    say(`${images.length} images, seed ${seed}.`);
    $("explore-seed").value = seed;  // the sliders start from the grid's first image
    $("explore-index").value = start;
    explore();
  } catch (error) {
    say(error.message, true);
  } finally {
    $("generate").disabled = false;
  }
}

// -- the enlarged view ---------------------------------------------------------------------------------------

let viewed = null;

/** Show `img` large; its download is `url` (the image's own PNG URL) where a plain link can fetch it. */
function view(img, caption, filename, url, origin) {
  viewed = origin || null;
  $("viewer-image").src = img.src;
  $("viewer-image").alt = caption;
  $("viewer-caption").textContent = caption;
  // A link cannot send the API key; with one, the download is the bytes shown, which are the same PNG.
  $("viewer-download").href = url && !$("key").value.trim() ? url : img.src;
  $("viewer-download").download = filename;
  $("viewer-explore").hidden = viewed === null;
  $("viewer").showModal();
}

$("viewer-close").addEventListener("click", () => $("viewer").close());
$("viewer").addEventListener("click", (click) => {  // a click on the backdrop, outside the dialog's box, closes it
  const box = $("viewer").getBoundingClientRect();
  const inside = box.left <= click.clientX && click.clientX <= box.right && box.top <= click.clientY && click.clientY <= box.bottom;
  if (click.target === $("viewer") && !inside) $("viewer").close();
});
$("viewer-explore").addEventListener("click", () => {
  $("explore-seed").value = viewed.seed;
  $("explore-index").value = viewed.index;
  $("viewer").close();
  explore();
  $("explore").scrollIntoView({ behavior: "smooth" });
});
$("explore-image").addEventListener("click", () => view($("explore-image"),
  `seed ${$("explore-seed").value}, image ${$("explore-index").value}, moved`,
  `seed${$("explore-seed").value}-${String($("explore-index").value).padStart(6, "0")}-moved.png`));

// -- the sliders: one image's latent vector, its most active dimensions moved and decoded live -------------

const activities = new Map();  // model name -> GET .../activity, measured once by the server anyway
let latent = null;  // the vector being moved; `original` is where the sliders started
let original = null;
let exploring = 0;  // the latest explore() call: older ones stop when they see it changed

async function explore() {
  const token = ++exploring;
  const model = currentModel();
  const seed = $("explore-seed").value;
  const index = $("explore-index").value;
  say(`Loading image ${index} of seed ${seed}...`, false, "explore-status");
  try {
    if (!activities.has(model.name)) activities.set(model.name, await getJson(`${modelPath()}/activity`));
    const activity = activities.get(model.name);
    const reply = await getJson(`${modelPath()}/latents/${seed}/${index}?temperature=${$("temperature").value}`);
    if (token !== exploring) return;
    latent = reply.latent.slice();
    original = reply.latent.slice();
    showSliders(activity);
    await decodeNow();
    const how = activity.measured ? "most active first" : "in order: this model has no encoder to rank them with";
    say(`Image ${index} of seed ${seed}: ${Math.min(SLIDERS, latent.length)} of ${latent.length} latent dimensions, ${how}.`,
      false, "explore-status");
  } catch (error) {
    if (token === exploring) say(error.message, true, "explore-status");
  }
}

function showSliders(activity) {
  $("sliders").replaceChildren(...activity.dimensions.slice(0, SLIDERS).map((dim) => {
    const row = document.createElement("label");
    row.className = "slider";
    const name = document.createElement("span");
    name.textContent = `z${dim}`;
    if (activity.variances) row.title = `activity (variance of the encoder's mean): ${activity.variances[dim].toFixed(3)}`;
    const input = document.createElement("input");
    input.type = "range";
    input.step = "0.05";
    input.min = String(Math.min(-4, Math.floor(latent[dim])));
    input.max = String(Math.max(4, Math.ceil(latent[dim])));
    input.value = String(latent[dim]);
    input.dataset.dim = String(dim);
    const value = document.createElement("output");
    value.textContent = latent[dim].toFixed(2);
    input.addEventListener("input", () => {
      latent[dim] = Number(input.value);
      value.textContent = latent[dim].toFixed(2);
      scheduleDecode();
    });
    row.append(name, input, value);
    return row;
  }));
}

let timer = null;
let decoding = false;
let again = false;

function scheduleDecode() {
  clearTimeout(timer);
  timer = setTimeout(decodeNow, DEBOUNCE_MS);
}

/** Decode `latent`; while one decoding is on its way, later moves wait and only the newest is sent. */
async function decodeNow() {
  if (decoding) { again = true; return; }
  decoding = true;
  try {
    do {
      again = false;
      const [url] = await decode([latent.slice()]);
      $("explore-image").src = url;
    } while (again);
  } catch (error) {
    say(error.message, true, "explore-status");
  } finally {
    decoding = false;
  }
}

$("explore-seed").addEventListener("change", explore);
$("explore-index").addEventListener("change", explore);
$("explore-reset").addEventListener("click", () => {
  if (original === null) return;
  latent = original.slice();
  for (const input of $("sliders").querySelectorAll("input")) input.value = String(latent[Number(input.dataset.dim)]);
  for (const row of $("sliders").children) row.querySelector("output").textContent = latent[Number(row.querySelector("input").dataset.dim)].toFixed(2);
  decodeNow();
});

// -- the interpolation strip -------------------------------------------------------------------------------

/** `steps` vectors from a to b inclusive: along the great circle (as vae_gen.latent_paths does) or straight. */
function path(a, b, steps, method) {
  const dot = a.reduce((sum, x, i) => sum + x * b[i], 0);
  const normA = Math.hypot(...a);
  const normB = Math.hypot(...b);
  const omega = normA && normB ? Math.acos(Math.min(1, Math.max(-1, dot / (normA * normB)))) : 0;
  const straight = method === "linear" || Math.sin(omega) < 1e-6;
  return Array.from({ length: steps }, (_, step) => {
    if (step === 0) return a.slice();  // the ends are the seeds' own latents, exactly
    if (step === steps - 1) return b.slice();
    const t = step / (steps - 1);
    const [wa, wb] = straight ? [1 - t, t] : [Math.sin((1 - t) * omega) / Math.sin(omega), Math.sin(t * omega) / Math.sin(omega)];
    return a.map((x, i) => wa * x + wb * b[i]);
  });
}

let interpolating = 0;  // the latest interpolate() call: older ones drop their frames

async function interpolate(event) {
  if (event) event.preventDefault();
  const token = ++interpolating;
  const [from, to, steps, method] = [$("from-seed").value, $("to-seed").value, Number($("frames").value), $("method").value];
  const model = $("model").value;
  say(`Decoding ${steps} frames...`, false, "strip-status");
  try {
    const query = `?temperature=${$("temperature").value}`;
    const [a, b] = await Promise.all([from, to].map(async (seed) => (await getJson(`${modelPath()}/latents/${seed}/0${query}`)).latent));
    const urls = await decode(path(a, b, steps, method));
    if (token !== interpolating) return;
    $("strip").replaceChildren(...urls.map((url, frame) => {
      const img = new Image();
      img.src = url;
      img.alt = `frame ${frame}`;
      img.className = "zoomable";
      const caption = `frame ${frame + 1} of ${steps}, seed ${from} to seed ${to} (${method})`;
      img.addEventListener("click", () => view(img, caption, `seed${from}-to-seed${to}-${frame + 1}-of-${steps}.png`));
      return img;
    }));
    say(`${steps} frames of ${model} from seed ${from} to seed ${to}, ${method}.`, false, "strip-status");
  } catch (error) {
    if (token === interpolating) say(error.message, true, "strip-status");
  }
}

$("controls").addEventListener("submit", generate);
$("interpolate-controls").addEventListener("submit", interpolate);
$("model").addEventListener("change", () => {
  showClasses(currentModel());
  explore();
  interpolate();
});
$("class").addEventListener("change", () => {
  if (latent !== null) decodeNow();
  interpolate();
});
$("guidance").addEventListener("change", () => {
  if (latent !== null) decodeNow();
  interpolate();
});
$("temperature").addEventListener("change", () => {
  explore();
  interpolate();
});
$("key").addEventListener("change", () => loadModels().catch((error) => say(error.message, true)));
loadModels().catch((error) => say(error.message, true));
