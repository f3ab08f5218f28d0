// The page of `vae-gen serve`: it uses only the public HTTP API, as any other client does.
"use strict";

const $ = (id) => document.getElementById(id);

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

function say(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

async function loadModels() {
  const { models } = await (await call("/v1/models", { headers: headers(false) })).json();
  $("model").replaceChildren(...models.map((m) => new Option(`${m.name}${m.default ? " (default)" : ""}`, m.name, m.default, m.default)));
  $("model").onchange = () => showClasses(models.find((m) => m.name === $("model").value));
  showClasses(models.find((m) => m.default) || models[0]);
  say(`${models.length} model${models.length === 1 ? "" : "s"} ready.`);
}

function showClasses(model) {
  const classes = (model && model.classes) || [];
  $("class-field").hidden = classes.length === 0;
  $("class").replaceChildren(...classes.map((name) => new Option(name, name)));
}

function request(format) {
  const body = {
    model: $("model").value,
    n: Number($("count").value),
    seed: Number($("seed").value),
    start: Number($("start").value),
    temperature: Number($("temperature").value),
    format,
  };
  if (!$("class-field").hidden) body.class = $("class").value;
  return { method: "POST", headers: headers(true), body: JSON.stringify(body) };
}

async function generate(event) {
  event.preventDefault();
  $("generate").disabled = true;
  say("Generating...");
  try {
    const { images } = await (await call("/v1/generate", request("json"))).json();
    const model = encodeURIComponent($("model").value);
    $("images").replaceChildren(...images.map(({ index, png }) => {
      const figure = document.createElement("figure");
      const link = document.createElement("a");
      link.href = `/v1/models/${model}/images/${$("seed").value}/${index}.png?temperature=${$("temperature").value}`;
      const img = new Image();
      img.src = `data:image/png;base64,${png}`;
      img.alt = `image ${index}`;
      link.append(img);
      const caption = document.createElement("figcaption");
      caption.textContent = String(index);
      figure.append(link, caption);
      return figure;
    }));
    const zip = await (await call("/v1/generate", request("zip"))).blob();
    $("download").href = URL.createObjectURL(zip);
    $("download").hidden = false;
    say(`${images.length} images, seed ${$("seed").value}.`);
  } catch (error) {
    say(error.message, true);
  } finally {
    $("generate").disabled = false;
  }
}

$("controls").addEventListener("submit", generate);
$("key").addEventListener("change", () => loadModels().catch((error) => say(error.message, true)));
loadModels().catch((error) => say(error.message, true));
