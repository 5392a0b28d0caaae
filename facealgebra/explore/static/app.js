// The explorer's page. The server does every edit (the same functions as `arith`); this file only sends the
// sliders' positions and shows what comes back. One tab holds one session: its photo is its own.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { session: null, sliders: [], weights: {}, busy: false, again: false, blinker: null };

async function call(path, options = {}) {
  const response = await fetch(path, options);
  const answer = await response.json().catch(() => ({ error: `the server answered ${response.status}` }));
  if (!response.ok) throw new Error(answer.error || `the server answered ${response.status}`);
  return answer;
}

function say(text) {
  $("message").textContent = text || "";
  $("message").hidden = !text;
}

const post = (path, body) => call(path, { method: "POST", headers: { "Content-Type": "application/json" },
                                           body: JSON.stringify({ session: state.session, ...body }) });

function moved() {  // only the sliders off zero: what the command names
  return Object.fromEntries(Object.entries(state.weights).filter(([, value]) => value !== 0));
}

// ---- sliders ---------------------------------------------------------------------------------------------------
function buildSliders(info) {
  const groups = new Map();
  for (const slider of info.sliders) {
    if (!groups.has(slider.group)) groups.set(slider.group, []);
    groups.get(slider.group).push(slider);
  }
  const layers = [...groups.keys()].filter((group) => group !== "attributes");
  for (const [group, sliders] of groups) {
    const box = document.createElement("div");
    box.className = "group";
    const title = document.createElement("h3");
    const place = layers.indexOf(group);
    title.textContent = group === "attributes" ? "attributes" :
      `layer ${group}` + (place === 0 ? " (lowest)" : place === layers.length - 1 ? " (highest)" : "");
    box.append(title);
    for (const slider of sliders) {
      const row = document.createElement("label");
      row.className = "slider";
      const input = Object.assign(document.createElement("input"), {
        type: "range", min: -slider.limit, max: slider.limit, step: 0.05, value: 0, id: `slider-${slider.key}` });
      input.dataset.key = slider.key;
      const output = document.createElement("output");
      output.textContent = "0";
      input.addEventListener("input", () => {
        state.weights[slider.key] = Number(input.value);
        output.textContent = Number(input.value).toFixed(2);
        update();
      });
      const name = document.createElement("span");
      name.textContent = slider.label;
      row.append(name, input, output);
      box.append(row);
      $("strip-key").append(new Option(`${slider.group === "attributes" ? "" : slider.group + " "}${slider.label}`, slider.key));
    }
    $("sliders").append(box);
  }
}

function setSlider(key, value) {
  const input = $(`slider-${key}`);
  input.value = value;
  input.dispatchEvent(new Event("input"));
}

// ---- the photo -------------------------------------------------------------------------------------------------
async function open(query, body, name) {
  say("");
  document.body.dataset.busy = true;
  $("command").textContent = "finding the face…";
  try {
    const headers = name === undefined ? {} : { "X-Filename": encodeURIComponent(name) };
    const opened = await call(`/api/open${query}`, { method: "POST", headers, body });
    Object.assign(state, { session: opened.session, weights: {}, opened });
    for (const input of document.querySelectorAll(".slider input")) {
      input.value = 0;
      input.nextElementSibling.textContent = "0";
    }
    $("before").src = opened.image;
    $("after").src = opened.image;
    $("strip").replaceChildren();
    drawFaces();
    show(opened.command);
  } catch (error) {
    say(error.message);
    $("command").textContent = state.session ? $("command").dataset.last : "open a photo";
  }
  document.body.dataset.busy = state.busy;
}

function drawFaces() {
  const { faces, chosen, width, height } = state.opened;
  $("faces-note").hidden = faces.length < 2;
  $("boxes").replaceChildren(...(faces.length < 2 ? [] : faces.map((box, index) => {
    const mark = document.createElement("div");
    mark.className = "face-box" + (index + 1 === chosen ? " chosen" : "");
    mark.textContent = index + 1;
    Object.assign(mark.style, { left: `${100 * box[0] / width}%`, top: `${100 * box[1] / height}%`,
                                width: `${100 * (box[2] - box[0]) / width}%`, height: `${100 * (box[3] - box[1]) / height}%` });
    mark.addEventListener("click", () => chooseFace(index + 1));
    return mark;
  })));
  if (faces.length > 1) setView("side-by-side");
}

async function chooseFace(number) {
  try {
    const answer = await post("/api/face", { face: number, weights: moved() });
    state.opened.chosen = answer.chosen;
    drawFaces();
    update();
  } catch (error) { say(error.message); }
}

function show(command) {
  $("command").textContent = command;
  $("command").dataset.last = command;
  const query = new URLSearchParams({ session: state.session, weights: JSON.stringify(moved()) });
  $("download").href = `/api/download?${query}`;
  $("download").download = state.opened.output;
}

// One edit in flight at a time; moves made meanwhile are sent together when it returns.
async function update() {
  if (!state.session) return;
  if (state.busy) { state.again = true; return; }
  setBusy(true);
  try {
    const session = state.session;
    const answer = await post("/api/edit", { weights: moved() });
    if (session === state.session) {  // not an answer about a photo this tab has since left
      $("after").src = answer.image;
      $("timing").textContent = `${answer.ms} ms`;
      show(answer.command);
      say("");
    }
  } catch (error) { say(error.message); }
  setBusy(false);
  if (state.again) { state.again = false; update(); }
}

function setBusy(busy) {  // also on the page, for the cursor (and for a test to wait on)
  state.busy = busy;
  document.body.dataset.busy = busy;
}

// ---- views -----------------------------------------------------------------------------------------------------
function setView(view) {
  clearInterval(state.blinker);
  $("views").className = view;
  for (const button of document.querySelectorAll("#view-buttons [data-view]")) {
    button.classList.toggle("chosen", button.dataset.view === view);
  }
  if (view === "blink") {
    state.blinker = setInterval(() => {
      $("views").classList.toggle("showing-before");
    }, 700);
  }
}

async function drawStrip() {
  if (!state.session) return say("open a photo first");
  const key = $("strip-key").value;
  try {
    const answer = await post("/api/strip", { weights: moved(), key });
    const image = Object.assign(document.createElement("img"), { src: answer.image, alt: `traversal of ${key}` });
    image.addEventListener("click", (event) => {
      const step = Math.min(answer.values.length - 1, Math.floor(answer.values.length * event.offsetX / image.width));
      setSlider(key, answer.values[step]);
    });
    const values = document.createElement("div");
    values.className = "strip-values";
    values.append(...answer.values.map((value) => Object.assign(document.createElement("span"), {
      textContent: (value > 0 ? "+" : "") + value.toFixed(1) })));
    $("strip").replaceChildren(image, values);
  } catch (error) { say(error.message); }
}

// ---- start -----------------------------------------------------------------------------------------------------
async function start() {
  const info = await call("/api/info");
  $("model").textContent = `model ${info.model}`;
  $("directions-from").textContent = `Layer sliders: principal directions of ${info.directions_from}, in standard deviations.`;
  $("limits").textContent = `Photos up to ${info.max_bytes / 2 ** 20} MB and ${info.max_pixels / 1e6} million ` +
    "pixels; they go to this machine's server only.";
  buildSliders(info);
  for (const name of info.examples) $("examples").append(new Option(name, name));
  $("file").addEventListener("change", () => {
    const file = $("file").files[0];
    if (file) open("", file, file.name);
    $("file").value = "";
  });
  $("examples").addEventListener("change", () => {
    if ($("examples").value) open(`?example=${encodeURIComponent($("examples").value)}`);
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    const file = event.dataTransfer.files[0];
    if (file) open("", file, file.name);
  });
  for (const button of document.querySelectorAll("#view-buttons [data-view]")) {
    button.addEventListener("click", () => setView(button.dataset.view));
  }
  $("reset").addEventListener("click", () => {
    for (const input of document.querySelectorAll(".slider input")) {
      input.value = 0;
      input.nextElementSibling.textContent = "0";
    }
    state.weights = {};
    update();
  });
  $("strip-button").addEventListener("click", drawStrip);
  if (info.given) open("?given=1");
}

start().catch((error) => say(error.message));
