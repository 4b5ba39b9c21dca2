// svd serve's page: builds its form from /schema.json (the request schema's ranges), submits to /api/jobs,
// follows the job's Server-Sent Events (read with fetch, so the API key can travel in a header), then plays
// and offers the video. No framework, no build step.
'use strict';

const $ = (id) => document.getElementById(id);

const LABELS = {
  width: 'Width (px)',
  height: 'Height (px)',
  resize: 'Resize',
  frames: 'Frames',
  steps: 'Steps',
  fps: 'FPS',
  motionBucketId: 'Motion bucket',
  condAug: 'Noise aug.',
  seed: 'Seed',
  minGuidance: 'Min guidance',
  maxGuidance: 'Max guidance',
  decodeChunkSize: 'Decode chunk',
  clips: 'Clips',
  duration: 'Duration (s)',
  overlap: 'Clip overlap',
  loop: 'Loop',
  mask: 'Motion mask',
};
const ACTIVE = new Set(['queued', 'running']);

let imageFile = null;
let maskFile = null;
let current = null;
let stream = null;

async function init() {
  const res = await fetch('/schema.json');
  const schema = await res.json();
  if (schema.authRequired) {
    $('key-row').hidden = false;
    $('api-key').value = sessionStorage.getItem('svd-key') || '';
  }
  buildForm(schema.request.properties || {}, schema.defaults || {});
  setupDrop(schema.maxImageBytes);
  setupMask(schema.maxImageBytes);
  $('generate').addEventListener('click', generate);
  $('cancel').addEventListener('click', cancel);
}

function buildForm(props, defaults) {
  const form = $('params');
  for (const [name, p] of Object.entries(props)) {
    const label = document.createElement('label');
    const title = document.createElement('span');
    const range = p.minimum !== undefined && p.maximum !== undefined ? ` · ${p.minimum}–${p.maximum}` : '';
    title.textContent = (LABELS[name] || name) + range;
    let input;
    if (p.type === 'boolean') {
      input = document.createElement('input');
      input.type = 'checkbox';
      input.value = 'true';
      label.className = 'check';
    } else if (Array.isArray(p.enum)) {
      input = document.createElement('select');
      const def = defaults[name] !== undefined ? defaults[name] : p.default;
      input.append(new Option(def !== undefined ? `default: ${def}` : 'default', ''));
      for (const v of p.enum) input.append(new Option(v, v));
      // long values (maintain_aspect_ratio) need the room of two columns
      if (p.enum.some((v) => String(v).length > 12)) label.classList.add('wide');
    } else {
      input = document.createElement('input');
      input.type = 'number';
      if (p.minimum !== undefined) input.min = p.minimum;
      if (p.maximum !== undefined) input.max = p.maximum;
      input.step = p.multipleOf || (p.type === 'integer' ? 1 : 'any');
      const def = defaults[name] !== undefined ? defaults[name] : p.default;
      input.placeholder = name === 'seed' ? 'random' : def !== undefined ? `${def}` : defaultHint(name, defaults);
    }
    input.name = name;
    input.id = `f-${name}`;
    label.htmlFor = input.id;
    label.append(title, input);
    form.append(label);
  }
}

/** What an empty field means when no single value can be shown. */
function defaultHint(name, defaults) {
  if (name === 'decodeChunkSize' && defaults.frames !== undefined) return `all (${defaults.frames})`;
  if (name === 'duration') return 'one clip';
  return 'default';
}

function setupDrop(maxBytes) {
  const drop = $('drop');
  const take = (file) => {
    if (!file) return;
    if (!/^image\/(png|jpeg|webp)$/.test(file.type))
      return showError(`That is ${file.type || 'not an image'}; use PNG, JPEG or WebP.`);
    if (maxBytes && file.size > maxBytes)
      return showError(`The image is ${file.size} bytes; this server takes up to ${maxBytes}.`);
    imageFile = file;
    const img = $('preview');
    if (img.src) URL.revokeObjectURL(img.src);
    img.src = URL.createObjectURL(file);
    img.hidden = false;
    $('drop-text').hidden = true;
    $('error').hidden = true;
    $('generate').disabled = Boolean(current && ACTIVE.has(current.status));
    setStatus('Ready.');
  };
  $('image-input').addEventListener('change', (e) => take(e.target.files[0]));
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    take(e.dataTransfer.files[0]);
  });
}

function setupMask(maxBytes) {
  const input = $('mask-input');
  input.addEventListener('change', () => {
    const file = input.files[0];
    maskFile = null;
    $('mask-clear').hidden = !file;
    if (!file) return;
    if (!/^image\/(png|jpeg|webp)$/.test(file.type)) {
      return showError(`The mask is ${file.type || 'not an image'}; use PNG, JPEG or WebP.`);
    }
    if (maxBytes && file.size > maxBytes) return showError(`The mask is ${file.size} bytes; the limit is ${maxBytes}.`);
    maskFile = file;
  });
  $('mask-clear').addEventListener('click', () => {
    input.value = '';
    maskFile = null;
    $('mask-clear').hidden = true;
  });
}

function authHeaders() {
  const key = $('api-key').value.trim();
  if (!key) return {};
  sessionStorage.setItem('svd-key', key);
  return { authorization: `Bearer ${key}` };
}

async function generate() {
  if (!imageFile) return;
  resetOutput();
  const form = new FormData();
  form.append('image', imageFile, imageFile.name || 'image.png');
  if (maskFile) form.append('mask', maskFile, maskFile.name || 'mask.png');
  for (const el of $('params').elements) {
    if (!el.name || (el.type === 'checkbox' && !el.checked)) continue;
    if (el.value !== '') form.append(el.name, el.value);
  }
  $('generate').disabled = true;
  setStatus('Uploading…');
  let res;
  try {
    res = await fetch('/api/jobs', { method: 'POST', headers: authHeaders(), body: form });
  } catch (err) {
    $('generate').disabled = false;
    setStatus('Not sent.');
    return showError(`Could not reach the server: ${err.message}`);
  }
  const body = await res.json().catch(() => null);
  if (!res.ok) {
    $('generate').disabled = false;
    setStatus(res.status === 401 ? 'Not sent: check the API key.' : 'Not sent: fix the fields below.');
    return showError(errorText(body, res.status));
  }
  render(body);
  follow(body.id);
}

async function follow(id) {
  stream?.abort();
  const ctrl = new AbortController();
  stream = ctrl;
  try {
    const res = await fetch(`/api/jobs/${id}/events`, { headers: authHeaders(), signal: ctrl.signal });
    if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let cut;
      while ((cut = buf.indexOf('\n\n')) >= 0) {
        const event = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        const data = event
          .split('\n')
          .filter((l) => l.startsWith('data:'))
          .map((l) => l.slice(5).trim())
          .join('\n');
        if (data) render(JSON.parse(data));
      }
    }
  } catch {
    if (ctrl.signal.aborted) return;
  }
  // The stream ended (or broke) before the job did: fall back to polling.
  while (!ctrl.signal.aborted && current && current.id === id && ACTIVE.has(current.status)) {
    await new Promise((r) => setTimeout(r, 500));
    const res = await fetch(`/api/jobs/${id}`, { headers: authHeaders() }).catch(() => null);
    if (res && res.ok) render(await res.json());
    else if (res && res.status === 404) break;
  }
}

async function cancel() {
  if (!current) return;
  $('cancel').disabled = true;
  const res = await fetch(`/api/jobs/${current.id}`, { method: 'DELETE', headers: authHeaders() }).catch(() => null);
  if (res && res.ok) render(await res.json());
  $('cancel').disabled = false;
}

function render(job) {
  current = job;
  const active = ACTIVE.has(job.status);
  $('generate').disabled = active || !imageFile;
  $('cancel').hidden = !active;
  $('progress').value = job.progress ? job.progress.fraction : 0;
  const p = job.progress || {};
  const clip = p.clip && p.totalClips > 1 ? `clip ${p.clip}/${p.totalClips}, ` : '';
  $('step').textContent = p.step && p.totalSteps ? `${clip}step ${p.step}/${p.totalSteps}` : '';
  $('log').textContent = (job.logs || []).map((l) => l.message).join('\n');
  $('log').scrollTop = $('log').scrollHeight;
  if (job.status === 'queued')
    setStatus(job.queuePosition > 0 ? `Queued (${job.queuePosition} ahead)` : 'Queued, starting next');
  // Before the first stage reports, the worker is opening the model (building its graphs on a first run).
  else if (job.status === 'running')
    setStatus(p.stage ? `Running: ${p.stage}` : 'Running: loading the model (the first run also builds it)…');
  else if (job.status === 'completed' && job.video) {
    setStatus('Done.');
    const video = $('video');
    if (video.dataset.url !== job.video.url) {
      video.dataset.url = job.video.url;
      video.src = job.video.url;
      video.hidden = false;
      video.play().catch(() => {});
    }
    $('download').href = `${job.video.url}?download=1`;
    $('download').setAttribute('download', job.video.fileName);
    $('seed').textContent = `seed ${job.video.seed}, ${(job.video.size / 1024).toFixed(0)} KiB`;
    $('result').hidden = false;
  } else if (job.status === 'cancelled') {
    setStatus('Cancelled.');
  } else if (job.status === 'failed') {
    setStatus('Failed.');
    showError(job.error ? job.error.message : 'The job failed.');
  }
}

function resetOutput() {
  $('error').hidden = true;
  $('result').hidden = true;
  $('video').hidden = true;
  $('video').removeAttribute('src');
  delete $('video').dataset.url;
  $('progress').value = 0;
  $('step').textContent = '';
  $('log').textContent = '';
}

function setStatus(text) {
  $('status').textContent = text;
}

function errorText(body, status) {
  const e = body && body.error;
  if (!e) return `The server answered HTTP ${status}.`;
  const issues = (e.issues || []).map((i) => `${LABELS[i.field] || i.field}: ${i.message}`);
  return issues.length ? issues.join('\n') : e.message;
}

function showError(text) {
  $('error').textContent = text;
  $('error').hidden = false;
}

init().catch((err) => showError(`The page could not start: ${err.message}`));
