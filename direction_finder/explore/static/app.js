// hpdirs explore: sliders for directions, the image of the current coefficients, names.
// No library and nothing from the network: this file and the server's API are all there is.
"use strict";

const token = document.querySelector('meta[name="hpdirs-token"]').content;
const client = Math.random().toString(36).slice(2);
const $ = (id) => document.getElementById(id);
const state = { meta: null, values: {}, seq: 0, timer: null, pending: {}, classIndex: null, className: "" };

function viewQuery(set) {
  const c = Object.entries(state.values).filter(([, v]) => v !== 0).map(([i, v]) => `${i}:${v}`).join(",");
  // token: the server runs the generator only for this page (an <img> elsewhere cannot know it)
  const q = new URLSearchParams({ set, c, seed: $("seed").value || "0", samples: $("samples").value, token });
  if ($("use-uploaded").checked) q.set("latents", "uploaded");
  const layers = state.meta.latent_layers;
  if (layers && ($("layer-first").value !== "0" || $("layer-last").value !== String(layers - 1))) {
    q.set("layers", `${$("layer-first").value}-${$("layer-last").value}`);
  }
  if (state.meta.class_conditional) {
    if (state.classIndex !== null && state.classIndex !== state.meta.class_index) q.set("class", String(state.classIndex));
    if ($("truncation").value !== "" && Number($("truncation").value) !== state.meta.truncation) q.set("truncation", $("truncation").value);
  }
  return q;
}

function say(message) { $("status").textContent = message; }

// The class box takes what `hpdirs classes` takes (a name, an index, a WordNet id); the server
// resolves it, with the closest names when it does not match one.
// A class that fails leaves the box, the picture and the name beside it on the class shown, says
// why next to the box, and offers the closest classes as buttons.
async function chooseClass() {
  const response = await fetch(`/api/class?${new URLSearchParams({ q: $("class").value })}`);
  const body = await response.json();
  const suggestions = $("class-suggestions");
  suggestions.replaceChildren();
  if (!response.ok) {
    $("class-error").textContent = body.error;
    $("class").value = state.className;
    for (const c of body.suggestions || []) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = `${c.index} ${c.name}`;
      button.addEventListener("click", () => { $("class").value = String(c.index); chooseClass(); });
      suggestions.append(button);
    }
    return;
  }
  state.classIndex = body.index;
  state.className = body.name;
  $("class").value = body.name;
  $("class-name").textContent = `${body.index} ${body.name}`;
  $("class-error").textContent = "";
  refresh();
}

// The layer range is checked where it is typed: whole numbers within 0..L-1, first <= last.
function layersChanged() {
  const last = state.meta.latent_layers - 1;
  const [a, b] = [$("layer-first").value, $("layer-last").value];
  const ok = /^\d+$/.test(a) && /^\d+$/.test(b) && Number(a) <= Number(b) && Number(b) <= last;
  $("layer-error").textContent = ok ? "" : `give two layers from 0 to ${last}, the first not after the last`;
  if (ok) refresh();
}

// The newest position wins: a new request aborts the one in flight for the same picture, and
// the server drops a request that a newer one of this page overtook while it waited.
async function show(img, set) {
  if (state.pending[set]) state.pending[set].abort();
  const controller = new AbortController();
  state.pending[set] = controller;
  const q = viewQuery(set);
  q.set("client", client);
  q.set("seq", String(++state.seq));
  try {
    const response = await fetch(`/api/image?${q}`, { signal: controller.signal });
    if (response.status === 409) return;  // superseded
    if (!response.ok) { say((await response.json()).error); return; }
    const blob = await response.blob();
    if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
    img.src = URL.createObjectURL(blob);
    img.dataset.view = q.get("c");
    say("");
  } catch (error) {
    if (error.name !== "AbortError") say(String(error));
  }
}

function refresh() {
  clearTimeout(state.timer);
  state.timer = setTimeout(() => {  // debounced: a drag sends one request per pause, not per pixel
    show($("image-learned"), "learned");
    const other = $("compare").value;
    $("other").hidden = !other;
    if (other) { $("other-caption").textContent = other; show($("image-other"), other); }
    const q = viewQuery("learned");
    $("export-png").href = `/api/image?${q}`;
    $("export-npy").href = `/api/latent.npy?${q}`;
  }, 60);
}

async function saveLabel(index, input) {
  const response = await fetch("/api/label", {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Hpdirs-Token": token },
    body: JSON.stringify({ index, name: input.value.trim() }),  // blank clears the name
  });
  const body = await response.json();
  if (!response.ok) { say(body.error); return; }
  state.meta.labels = body.labels;
  input.value = body.labels[String(index)] || "";
  say("");
}

function sliderRow(index) {
  const eta = state.meta.eta;
  const row = document.createElement("div");
  row.className = "slider";
  row.dataset.index = String(index);
  row.innerHTML = `<span>d${index}</span><input type="range" min="${-eta}" max="${eta}" step="0.1" value="0"
    aria-label="direction ${index}"><span class="value">0.0</span><input type="text" placeholder="name"
    aria-label="name of direction ${index}"><a title="GIF sweep from here">GIF</a>`;
  const [range, value, name, gif] = [row.children[1], row.children[2], row.children[3], row.children[4]];
  name.value = state.meta.labels[String(index)] || "";
  const own = (state.meta.label_layers || {})[String(index)];
  if (own) {  // a label's layers: this direction moves only these, as render shows it
    row.children[0].textContent = `d${index} (layers ${own[0]}-${own[1]})`;
    row.children[0].title = "its label applies it to these latent layers only (hpdirs label --layers)";
  }
  range.addEventListener("input", () => {
    state.values[index] = Number(range.value);
    value.textContent = Number(range.value).toFixed(1);
    refresh();
  });
  name.addEventListener("change", () => saveLabel(index, name));
  gif.addEventListener("mouseenter", () => {
    gif.href = `/api/sweep.gif?${viewQuery("learned")}&direction=${index}`;
    gif.download = `direction_${index}.gif`;
  });
  return row;
}

function drawSliders() {
  const box = $("sliders");
  const filter = $("filter").value.trim().toLowerCase();
  const ordered = $("order").value === "activeness" && state.meta.order ? state.meta.order
    : [...Array(state.meta.num_directions).keys()];
  box.replaceChildren(...ordered.filter((i) => {
    const name = (state.meta.labels[String(i)] || "").toLowerCase();
    return !filter || String(i) === filter || name.includes(filter);
  }).map(sliderRow));
  for (const row of box.children) {
    const i = Number(row.dataset.index);
    row.children[1].value = String(state.values[i] || 0);
    row.children[2].textContent = (state.values[i] || 0).toFixed(1);
  }
}

async function uploadLatents() {
  const file = $("upload").files[0];
  if (!file) return;
  const response = await fetch("/api/latents", {
    method: "POST", headers: { "X-Hpdirs-Token": token }, body: await file.arrayBuffer(),
  });
  const body = await response.json();
  if (!response.ok) { say(body.error); return; }
  $("use-uploaded").disabled = false;
  $("use-uploaded").checked = true;
  $("samples").value = String(Math.min(body.count, state.meta.max_samples));
  refresh();
}

async function start() {
  state.meta = await (await fetch("/api/meta")).json();
  const m = state.meta;
  $("about").textContent = `${m.model} · ${m.class_name} · ${m.num_directions} directions · η ±${m.eta} · ${m.file}`;
  for (const set of m.sets.filter((s) => s !== "learned")) $("compare").add(new Option(set, set));
  if (m.latent_layers) {
    $("layerwise").hidden = false;
    for (const id of ["layer-first", "layer-last"]) $(id).max = String(m.latent_layers - 1);
    $("layer-first").value = "0";
    $("layer-last").value = String(m.latent_layers - 1);
  }
  if (m.class_conditional) {
    $("conditional").hidden = false;
    $("class").value = m.class_name;
    state.classIndex = m.class_index;
    state.className = m.class_name;
    $("class-name").textContent = `${m.class_index} ${m.class_name}`;
    $("truncation").value = m.truncation;
  }
  drawSliders();
  for (const id of ["seed", "samples", "compare", "truncation", "use-uploaded"]) {
    $(id).addEventListener("change", refresh);
  }
  for (const id of ["layer-first", "layer-last"]) $(id).addEventListener("change", layersChanged);
  $("class").addEventListener("change", chooseClass);
  $("next-seed").addEventListener("click", () => { $("seed").value = String(Number($("seed").value || 0) + 1); refresh(); });
  $("reset").addEventListener("click", () => { state.values = {}; drawSliders(); refresh(); });
  $("filter").addEventListener("input", drawSliders);
  $("order").addEventListener("change", async () => { state.meta = { ...state.meta, ...(await (await fetch("/api/meta")).json()) }; drawSliders(); });
  $("upload").addEventListener("change", uploadLatents);
  refresh();
}

start();
