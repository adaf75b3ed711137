"use strict";
// facerec's page: upload photos straight to S3 with the API's presigned POST, poll each job (or
// one batch for several photos), and draw what came back. API paths are relative to where the page
// is served (/app locally, /<stage>/app behind API Gateway), so the same file works on both.

const API = location.pathname.replace(/app\/?$/, "");
// Every poll is a request someone pays for: waits grow from half a second to five, and never
// come sooner than the service's Retry-After (longer while the first worker starts).
const POLL_FIRST_MS = 500;
const POLL_GROWTH = 1.5;
const POLL_CAP_MS = 5000;
const GIVE_UP_MS = 10 * 60 * 1000;
// Photos per batch: the service's FACEREC_MAX_PHOTOS_PER_REQUEST default.
const BATCH_PHOTOS = 100;
const TYPES = { jpg: "image/jpeg", jpeg: "image/jpeg", png: "image/png", webp: "image/webp" };
const STATUS_TEXT = {
  UPLOADING: "sending the photo",
  AWAITING_UPLOAD: "waiting for the upload to be seen",
  QUEUED: "waiting for a worker (the first may take a while to start)",
  PROCESSING: "a worker is looking at it",
  DONE: "",
  FAILED: "",
};

const $ = (selector, root = document) => root.querySelector(selector);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

// ---- talking to the API and to S3 -------------------------------------------------------------

const tokenInput = $("#admin-token");
const keyInput = $("#api-key");

// The answer's body (null for none) and headers; a 304 to If-None-Match is an answer, not an error.
async function request(method, path, { body, admin = false, etag = null } = {}) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (admin) headers["X-Admin-Token"] = tokenInput.value;
  // Every call may send the key: recognition needs it, and an enrollment's job is polled by it.
  if (keyInput.value) headers["X-Api-Key"] = keyInput.value;
  if (etag) headers["If-None-Match"] = etag;
  let response;
  try {
    response = await fetch(API + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new ApiError(`cannot reach the service (${error.message})`, 0);
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { /* not JSON: the text says what went wrong */ }
  if (!response.ok && response.status !== 304) throw new ApiError((data && data.message) || text || response.statusText, response.status);
  return { status: response.status, data, headers: response.headers };
}

async function api(method, path, options) {
  return (await request(method, path, options)).data;
}

// Results name the people in a photo to anyone; how close each face came (its distance) is for
// operators: with the admin token on this page, polls send it and the faces show their distances.
const asOperator = () => tokenInput.value !== "";

// Retry-After is seconds or an HTTP date; 0 when absent.
function retryAfterMs(headers) {
  const value = headers.get("Retry-After");
  if (!value) return 0;
  const seconds = Number(value);
  return Number.isFinite(seconds) ? seconds * 1000 : Math.max(0, Date.parse(value) - Date.now() || 0);
}

// GET `path` until `isFinal(body)`, telling `onBody` each new body. The last ETag goes along, so
// an unchanged answer is a 304 without a body and the last body stands.
async function poll(path, isFinal, onBody) {
  const started = Date.now();
  let backoff = POLL_FIRST_MS;
  let wait = backoff;
  let etag = null;
  let body = null;
  let unreachable = 0;
  while (Date.now() - started < GIVE_UP_MS) {
    await sleep(wait);
    backoff = Math.min(backoff * POLL_GROWTH, POLL_CAP_MS);
    wait = backoff;
    let answer;
    try {
      answer = await request("GET", path, { etag, admin: asOperator() });
      unreachable = 0;
    } catch (error) {
      if (error.status === 0 && ++unreachable < 5) continue; // a blip in the network: ask again
      throw error;
    }
    if (answer.status !== 304) {
      body = answer.data;
      etag = answer.headers.get("ETag");
      onBody(body);
    }
    if (isFinal(body)) return body;
    wait = Math.max(backoff, retryAfterMs(answer.headers));
  }
  throw new ApiError(`not done after ${GIVE_UP_MS / 60000} minutes; it may still finish later`, 0);
}

function contentType(file) {
  return file.type || TYPES[file.name.split(".").pop().toLowerCase()] || "application/octet-stream";
}

// The presigned POST wants its fields first and the file last, named "file".
async function uploadTo(slot, file) {
  const form = new FormData();
  for (const [name, value] of Object.entries(slot.fields)) form.append(name, value);
  form.append("file", file);
  let response;
  try {
    response = await fetch(slot.url, { method: "POST", body: form });
  } catch (error) {
    throw new ApiError(`the photo did not reach storage (${error.message})`, 0);
  }
  if (!response.ok) {
    const xml = new DOMParser().parseFromString(await response.text(), "application/xml");
    const reason = xml.querySelector("Message")?.textContent;
    throw new ApiError(`storage refused the photo (${response.status})${reason ? ": " + reason : ""}`, response.status);
  }
}

// Create the job, upload its photo, then poll until DONE (its document) or FAILED (null).
async function runJob(card, path, file, { admin = false } = {}) {
  try {
    card.setStatus("UPLOADING");
    const job = await api("POST", path, { body: { filename: file.name, content_type: contentType(file) }, admin });
    await uploadTo(job.upload, file);
    card.setStatus(job.status);
    return await follow(card, job.job_id);
  } catch (error) {
    card.fail(error.message);
    return null;
  }
}

async function follow(card, jobId) {
  const job = await poll(`jobs/${encodeURIComponent(jobId)}`, (job) => job.status === "DONE" || job.status === "FAILED", (job) => {
    if (job.status !== "FAILED") card.setStatus(job.status);
  });
  if (job.status === "DONE") return job.result;
  card.fail(job.message || job.error || "the job failed");
  return null;
}

// Several photos as one batch: one request for every upload slot, one to start, and one poll for
// all of them; each card shows its photo's result as it arrives. `items` are {card, file} pairs.
async function runBatch(items) {
  const ended = new Set(); // the indexes whose cards show how they ended
  const fail = (index, cause) => {
    ended.add(index);
    items[index].card.fail(cause);
  };
  const show = (batch) => batch.photos.forEach((photo) => {
    if (ended.has(photo.index)) return;
    const { card, file } = items[photo.index];
    if (photo.status === "FAILED") {
      fail(photo.index, photo.message || photo.error || "the photo failed");
    } else if (photo.status === "DONE") {
      ended.add(photo.index);
      card.setStatus("DONE");
      drawFaces(card, file, photo.result);
    } else {
      card.setStatus(photo.status);
    }
  });
  try {
    for (const { card } of items) card.setStatus("UPLOADING");
    const photos = items.map(({ file }) => ({ filename: file.name, content_type: contentType(file) }));
    const batch = await api("POST", "batches", { body: { photos } });
    await Promise.all(batch.photos.map(async (photo) => {
      try {
        await uploadTo(photo.upload, items[photo.index].file);
        items[photo.index].card.setStatus(batch.status);
      } catch (error) {
        fail(photo.index, error.message); // the service only knows the photo never arrived
      }
    }));
    const path = `batches/${encodeURIComponent(batch.batch_id)}`;
    const started = await api("POST", `${path}/start`, { admin: asOperator() });
    show(started);
    if (!started.final) await poll(path, (state) => state.final, show);
  } catch (error) {
    items.forEach((_, index) => ended.has(index) || fail(index, error.message));
  }
}

// ---- a card per photo --------------------------------------------------------------------------

function newCard(list, file) {
  const element = $("#card-template").content.firstElementChild.cloneNode(true);
  $(".filename", element).textContent = file.name;
  list.prepend(element);
  const status = $(".status", element);
  const detail = $(".detail", element);
  const setStatus = (value, text = STATUS_TEXT[value] ?? "") => {
    element.dataset.status = value;
    status.dataset.status = value;
    status.textContent = value;
    detail.textContent = text;
  };
  return { element, setStatus, fail: (cause) => setStatus("FAILED", cause) };
}

const percent = (value, whole) => `${(100 * value) / whole}%`;

function drawFaces(card, file, result) {
  const figure = $(".photo", card.element);
  const frame = $(".frame", figure);
  const img = $("img", frame);
  // Browsers draw <img> upright from EXIF (image-orientation: from-image), and the worker's boxes
  // are in the upright photo's pixels: boxes in percent of its size land where the faces are.
  img.src = URL.createObjectURL(file);
  img.alt = `${file.name}, ${describe(result.faces)}`;
  img.addEventListener("load", () => URL.revokeObjectURL(img.src), { once: true });
  const list = $(".faces", card.element);
  result.faces.forEach((face, index) => {
    const [x1, y1, x2, y2] = face.box;
    const name = face.identity ?? "unknown";
    const box = document.createElement("div");
    box.className = face.identity ? "box" : "box unknown";
    if (y1 / result.height < 0.08) box.classList.add("label-below");
    Object.assign(box.style, {
      left: percent(x1, result.width), top: percent(y1, result.height),
      width: percent(x2 - x1, result.width), height: percent(y2 - y1, result.height),
    });
    box.setAttribute("aria-hidden", "true"); // the list below says the same in words
    const label = document.createElement("span");
    label.className = "label";
    label.textContent = name;
    box.append(label);
    frame.append(box);

    const item = document.createElement("li");
    if (!face.identity) item.className = "unknown";
    const distance = typeof face.distance === "number" ? `, distance ${face.distance.toFixed(3)}` : "";
    item.textContent = `${name}${distance}`;
    item.title = `face ${index + 1}, detection probability ${(face.probability ?? 0).toFixed(3)}`;
    list.append(item);
  });
  $(".summary", figure).textContent = `${describe(result.faces)} · model ${result.model?.name ?? "?"} (match under ${result.model?.threshold ?? "?"})`;
  figure.hidden = false;
}

function describe(faces) {
  if (faces.length === 0) return "no faces found";
  const known = faces.filter((face) => face.identity).length;
  return `${faces.length} face${faces.length === 1 ? "" : "s"}: ${known} known, ${faces.length - known} unknown`;
}

// ---- recognize tab -----------------------------------------------------------------------------

// Every file gets a card: one the service refuses shows the service's reason there. Cards go on
// top, newest first, so several go in reversed to read in the order they were chosen. One photo
// is a job; several are batches of up to BATCH_PHOTOS.
function recognize(files) {
  // Without a key each card would show the service's refusal; ask for it first, as for the token.
  if (!keyInput.value) {
    keyInput.focus();
    keyInput.setCustomValidity("Enter the API key first.");
    keyInput.reportValidity();
    return;
  }
  const items = [...files].reverse().map((file) => ({ card: newCard($("#jobs"), file), file })).reverse();
  if (items.length === 1) {
    const [{ card, file }] = items;
    runJob(card, "jobs", file).then((result) => result && drawFaces(card, file, result));
    return;
  }
  for (let start = 0; start < items.length; start += BATCH_PHOTOS) runBatch(items.slice(start, start + BATCH_PHOTOS));
}

const photosInput = $("#photos");
photosInput.addEventListener("change", () => {
  recognize(photosInput.files);
  photosInput.value = ""; // choosing the same photo again starts another job
});

const dropzone = $("#dropzone");
dropzone.addEventListener("dragover", (event) => {
  event.preventDefault();
  dropzone.classList.add("over");
});
dropzone.addEventListener("dragleave", () => dropzone.classList.remove("over"));
dropzone.addEventListener("drop", (event) => {
  event.preventDefault();
  dropzone.classList.remove("over");
  recognize(event.dataTransfer.files);
});

// ---- the API key (recognition) and the admin token (enroll and fleet tabs, distances) ------------

// Both kept in sessionStorage, for the reasons the token's comment below gives.
const API_KEY_KEY = "facerec.apiKey";
keyInput.value = sessionStorage.getItem(API_KEY_KEY) ?? "";
keyInput.addEventListener("input", () => keyInput.setCustomValidity(""));
keyInput.addEventListener("change", () => sessionStorage.setItem(API_KEY_KEY, keyInput.value));
$("#key-form").addEventListener("submit", (event) => event.preventDefault());

// sessionStorage, not localStorage: the token lives as long as this browser tab, survives a
// reload, and is gone when the tab closes; no other tab or later visit finds it on disk.
const TOKEN_KEY = "facerec.adminToken";
tokenInput.value = sessionStorage.getItem(TOKEN_KEY) ?? "";
tokenInput.addEventListener("change", () => {
  sessionStorage.setItem(TOKEN_KEY, tokenInput.value);
  if (!$("#panel-enroll").hidden) loadPeople();
  if (!$("#panel-fleet").hidden) loadFleet();
});
$("#token-form").addEventListener("submit", (event) => event.preventDefault());

// ---- enroll tab --------------------------------------------------------------------------------

async function enroll(event) {
  event.preventDefault();
  const message = $("#enroll-message");
  message.textContent = "";
  if (!tokenInput.value) {
    message.textContent = "Enter the admin token first.";
    tokenInput.focus();
    return;
  }
  const personId = $("#person-id").value.trim();
  const displayName = $("#display-name").value.trim() || personId;
  const files = [...$("#enroll-photos").files];
  try {
    await api("POST", "people", { body: { person_id: personId, display_name: displayName }, admin: true });
  } catch (error) {
    // 409: they exist already, and these photos add to their gallery.
    if (error.status !== 409) {
      message.textContent = error.message;
      return;
    }
  }
  $("#enroll-form").reset();
  loadPeople();
  await Promise.all(files.reverse().map(async (file) => {
    const card = newCard($("#enroll-jobs"), file);
    const result = await runJob(card, `people/${encodeURIComponent(personId)}/photos`, file, { admin: true });
    if (result) card.setStatus("DONE", `${personId} now has ${result.photos_enrolled} photo(s)`);
  }));
}
$("#enroll-form").addEventListener("submit", enroll);

async function loadPeople() {
  const message = $("#people-message");
  const body = $("#people tbody");
  if (!tokenInput.value) {
    body.replaceChildren();
    message.textContent = "Enter the admin token to see who is enrolled.";
    return;
  }
  let people;
  try {
    ({ people } = await api("GET", "people", { admin: true }));
  } catch (error) {
    message.textContent = error.message;
    return;
  }
  message.textContent = people.length ? `${people.length} enrolled.` : "Nobody is enrolled yet.";
  body.replaceChildren(...people.map(personRow));
}

function personRow(person) {
  const row = document.createElement("tr");
  for (const value of [person.person_id, person.display_name, (person.created_at ?? "").slice(0, 10)]) {
    const cell = document.createElement("td");
    cell.textContent = value;
    row.append(cell);
  }
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = "Delete";
  button.setAttribute("aria-label", `Delete ${person.person_id}`);
  button.addEventListener("click", async () => {
    if (!confirm(`Delete ${person.person_id}? Their face stops being recognized.`)) return;
    try {
      await api("DELETE", `people/${encodeURIComponent(person.person_id)}`, { admin: true });
    } catch (error) {
      $("#people-message").textContent = error.message;
      return;
    }
    loadPeople();
  });
  const cell = document.createElement("td");
  cell.append(button);
  row.append(cell);
  return row;
}
$("#refresh-people").addEventListener("click", loadPeople);

// ---- fleet tab: the queue, the workers and the last hour's jobs, refreshed while it is open -------

const FLEET_REFRESH_MS = 3000;
let fleetTimer = null;

async function loadFleet() {
  const message = $("#fleet-message");
  if (!tokenInput.value) {
    message.textContent = "Enter the admin token to see the fleet.";
    return;
  }
  let view;
  try {
    view = await api("GET", "admin/fleet", { admin: true });
  } catch (error) {
    message.textContent = error.message;
    return;
  }
  message.textContent = "";
  const { queue, workers } = view;
  $("#fleet-visible").textContent = queue.visible;
  $("#fleet-in-flight").textContent = queue.in_flight;
  $("#fleet-dead").textContent = `${queue.dead_lettered} jobs, ${queue.upload_events_dead_lettered} upload events`;
  $("#fleet-workers").textContent = `${workers.live} of at most ${workers.max}`;
  $("#fleet-workers").title = workers.instances.map((i) => `${i.id} (${i.state})`).join("\n");
  $("#fleet-jobs tbody").replaceChildren(...Object.entries(view.jobs_last_hour).map(([status, count]) => {
    const row = document.createElement("tr");
    for (const value of [status, count]) {
      const cell = document.createElement("td");
      cell.textContent = value;
      row.append(cell);
    }
    return row;
  }));
  $("#fleet-updated").textContent = `; last at ${new Date(view.generated_at).toLocaleTimeString()}`;
  // The counts come from a scan the service repeats only every half minute or so.
  $("#fleet-counted").textContent = ` (counted at ${new Date(view.jobs_counted_at).toLocaleTimeString()})`;
}

function watchFleet(open) {
  clearInterval(fleetTimer);
  fleetTimer = open ? setInterval(loadFleet, FLEET_REFRESH_MS) : null;
  if (open) loadFleet();
}

// ---- tabs (WAI-ARIA pattern: arrows move between tabs, the URL's #hash remembers the tab) --------

const tabs = [...document.querySelectorAll('[role="tab"]')];

function showTab(tab, focus = false) {
  for (const other of tabs) {
    const selected = other === tab;
    other.setAttribute("aria-selected", String(selected));
    other.tabIndex = selected ? 0 : -1;
    document.getElementById(other.getAttribute("aria-controls")).hidden = !selected;
  }
  if (focus) tab.focus();
  history.replaceState(null, "", "#" + tab.id.replace("tab-", ""));
  $("#token-form").hidden = tab.id === "tab-recognize";
  if (tab.id === "tab-enroll") loadPeople();
  watchFleet(tab.id === "tab-fleet");
}

for (const tab of tabs) {
  tab.addEventListener("click", () => showTab(tab));
  tab.addEventListener("keydown", (event) => {
    const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
    if (!step) return;
    event.preventDefault();
    showTab(tabs[(tabs.indexOf(tab) + step + tabs.length) % tabs.length], true);
  });
}
showTab(tabs.find((tab) => tab.id === `tab-${location.hash.slice(1)}`) ?? tabs[0]);
