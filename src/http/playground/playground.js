// The abacus playground: the agent card, a chat over SendStreamingMessage
// (SSE read from fetch: EventSource cannot POST), the task list (ListTasks,
// GetTask, CancelTask) and multi-part messages, over the JSON-RPC binding of
// this origin. No dependencies; every text from the agent goes in through
// textContent, never as HTML.
'use strict';

(() => {
  const ENDPOINT = '/';
  const CARD_PATH = '/.well-known/agent-card.json';
  const TERMINAL = new Set(['completed', 'failed', 'canceled', 'rejected']);
  const INTERRUPTED = new Set(['input-required', 'auth-required']);

  const $ = (id) => document.getElementById(id);
  const ui = {
    name: $('agent-name'),
    description: $('agent-description'),
    card: $('card'),
    log: $('log'),
    empty: $('log-empty'),
    form: $('send-form'),
    message: $('message'),
    send: $('send'),
    file: $('file'),
    data: $('data'),
    dataError: $('data-error'),
    attach: $('attach'),
    context: $('context'),
    newConversation: $('new-conversation'),
    tasks: document.querySelector('#tasks tbody'),
    tasksStatus: $('tasks-status'),
    refresh: $('refresh-tasks'),
    detail: $('task-detail'),
    credentials: $('credentials'),
    scheme: $('scheme'),
    secret: $('secret'),
  };

  const state = {
    rpcId: 0,
    contextId: null,
    // The task that asked for input: the next message continues it.
    waitingTaskId: null,
    schemes: [],
    refreshTimer: null,
    // Tasks this page is streaming: the list is refreshed until they end,
    // also while the store has not listed them yet.
    live: new Set(),
  };

  // ---- DOM helpers ----

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'class') node.className = value;
      else if (key === 'text') node.textContent = value;
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? '' : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function stateName(wire) {
    return String(wire || 'unknown').replace(/^TASK_STATE_/, '').toLowerCase().replace(/_/g, '-');
  }

  function stateBadge(name) {
    return el('span', { class: 'state', 'data-state': name, text: name });
  }

  function shortId(id) {
    return id && id.length > 12 ? '…' + id.slice(-8) : id || '';
  }

  function fmtNumber(value) {
    if (typeof value !== 'number') return value === null || value === undefined ? '—' : String(value);
    if (Number.isInteger(value)) return String(value);
    return String(Number(value.toPrecision(6)));
  }

  function textOf(parts) {
    return (parts || []).filter((p) => typeof p.text === 'string').map((p) => p.text).join('\n');
  }

  // ---- JSON-RPC ----

  function headers(accept) {
    const h = { 'Content-Type': 'application/json', 'A2A-Version': '1.0', Accept: accept };
    const scheme = state.schemes[ui.scheme.selectedIndex];
    const secret = ui.secret.value.trim();
    if (scheme && secret) h[scheme.header] = scheme.prefix + secret;
    return h;
  }

  function body(method, params) {
    state.rpcId += 1;
    return JSON.stringify({ jsonrpc: '2.0', id: state.rpcId, method, params });
  }

  function rpcError(error) {
    const e = new Error(`${error.message || 'error'} (${error.code})`);
    e.rpc = error;
    return e;
  }

  async function httpError(resp) {
    const text = await resp.text().catch(() => '');
    try {
      const parsed = JSON.parse(text);
      if (parsed && parsed.error) return rpcError(parsed.error);
    } catch (_) {
      // Not JSON: the status says it.
    }
    return new Error(`HTTP ${resp.status}${text ? ': ' + text.trim().slice(0, 200) : ''}`);
  }

  async function rpc(method, params) {
    const resp = await fetch(ENDPOINT, { method: 'POST', headers: headers('application/json'), body: body(method, params) });
    if (!resp.ok) throw await httpError(resp);
    const reply = await resp.json();
    if (reply.error) throw rpcError(reply.error);
    return reply.result;
  }

  // One StreamResponse per SSE event; a JSON-RPC error ends the stream.
  async function* stream(method, params) {
    const resp = await fetch(ENDPOINT, { method: 'POST', headers: headers('text/event-stream'), body: body(method, params) });
    const type = resp.headers.get('content-type') || '';
    if (!resp.ok) throw await httpError(resp);
    if (!type.startsWith('text/event-stream')) {
      const reply = await resp.json();
      if (reply.error) throw rpcError(reply.error);
      yield reply.result;
      return;
    }
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer = (buffer + value).replace(/\r\n?/g, '\n');
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block
          .split('\n')
          .filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(5).replace(/^ /, ''))
          .join('\n');
        if (!data) continue; // a keep-alive comment
        const reply = JSON.parse(data);
        if (reply.error) throw rpcError(reply.error);
        yield reply.result;
      }
    }
  }

  // ---- rendering parts and data ----

  function table(caption, head, rows, cls) {
    const t = el('table', { class: cls });
    if (caption) t.append(el('caption', { text: caption }));
    if (head) t.append(el('thead', {}, el('tr', {}, head.map((h) => el('th', { scope: 'col', class: h.num ? 'num' : null, text: h.label || h })))));
    t.append(el('tbody', {}, rows));
    return el('div', { class: 'scroll' }, t);
  }

  // A matrix as a grid of its entries.
  function grid(caption, rows) {
    const body = rows.map((row) => el('tr', {}, row.map((cell) => el('td', { text: fmtNumber(cell) }))));
    return table(caption, null, body, 'grid');
  }

  function facts(entries) {
    const dl = el('dl', { class: 'facts' });
    for (const [key, value] of entries) dl.append(el('dt', { text: key.replace(/_/g, ' ') }), el('dd', { text: fmtNumber(value) }));
    return dl;
  }

  function isScalar(v) {
    return v === null || ['string', 'number', 'boolean'].includes(typeof v);
  }

  // `{"matrix": [[…]], "shape", "rank", "determinant", "inverse", …}`.
  function renderMatrix(data) {
    const shape = Array.isArray(data.shape) ? data.shape.join('×') : `${data.matrix.length}×${(data.matrix[0] || []).length}`;
    const out = [grid(`Matrix ${shape}`, data.matrix)];
    const scalars = Object.entries(data).filter(([k, v]) => isScalar(v) && k !== 'kind' && !k.endsWith('_decimal'));
    if (scalars.length) out.push(facts(scalars));
    if (Array.isArray(data.inverse)) out.push(grid('Inverse', data.inverse));
    return out;
  }

  // Dataset statistics: `{"count", "fields", "numeric": {field: {mean, …}}, "categorical": {…}}`.
  function renderStatistics(data) {
    const fields = Array.isArray(data.fields) ? data.fields : Object.keys(data.numeric);
    const numeric = data.numeric || {};
    const other = data.categorical || {};
    const records = typeof data.count === 'number' ? `${data.count} record${data.count === 1 ? '' : 's'}` : '';
    const what = [data.filename, records].filter(Boolean).join(', ');
    const out = [];
    const numRows = fields.filter((f) => numeric[f]).map((f) => {
      const s = numeric[f];
      return el('tr', {},
        el('th', { scope: 'row', text: f }),
        ['count', 'missing', 'mean', 'median', 'stddev', 'min', 'max'].map((k) => el('td', { class: 'num', text: fmtNumber(s[k]) })));
    });
    if (numRows.length) {
      const head = ['field', 'count', 'missing', 'mean', 'median', 'sd', 'min', 'max'].map((label, i) => ({ label, num: i > 0 }));
      out.push(table(`Statistics${what ? ' (' + what + ')' : ''}`, head, numRows, 'stats'));
    }
    const otherRows = fields.filter((f) => other[f]).map((f) => {
      const s = other[f];
      const top = s.top === null || s.top === undefined ? '—' : `${s.top} (${s.top_count})`;
      return el('tr', {}, el('th', { scope: 'row', text: f }), el('td', { text: s.type || '' }),
        el('td', { class: 'num', text: fmtNumber(s.count) }), el('td', { class: 'num', text: fmtNumber(s.distinct) }), el('td', { text: top }));
    });
    if (otherRows.length) {
      out.push(table('Other fields', ['field', 'type', { label: 'count', num: true }, { label: 'distinct', num: true }, 'most frequent'], otherRows, 'stats'));
    }
    return out;
  }

  function isRecord(v) {
    return v !== null && typeof v === 'object' && !Array.isArray(v);
  }

  function renderData(data) {
    if (isRecord(data) && Array.isArray(data.matrix) && data.matrix.every(Array.isArray)) return renderMatrix(data);
    if (isRecord(data) && isRecord(data.numeric)) return renderStatistics(data);
    if (Array.isArray(data) && data.length && data.every(Array.isArray)) return [grid('Data', data)];
    if (Array.isArray(data) && data.length && data.every(isRecord)) {
      const keys = [...new Set(data.flatMap((r) => Object.keys(r)))];
      const rows = data.map((r) => el('tr', {}, keys.map((k) => el('td', { text: isScalar(r[k]) ? fmtNumber(r[k]) : JSON.stringify(r[k]) }))));
      return [table('Data', keys, rows)];
    }
    if (isRecord(data) && Object.values(data).every(isScalar)) return [facts(Object.entries(data))];
    return [el('pre', { class: 'json', text: JSON.stringify(data, null, 2) })];
  }

  function renderPart(part) {
    if (typeof part.text === 'string') return el('p', { text: part.text });
    if (part.data !== undefined) return el('div', { class: 'data' }, renderData(part.data));
    const name = part.filename || 'file';
    const type = part.mediaType || 'application/octet-stream';
    if (typeof part.raw === 'string') {
      if (type.startsWith('image/') && type !== 'image/svg+xml') {
        return el('img', { src: `data:${type};base64,${part.raw}`, alt: name, class: 'attachment' });
      }
      return el('a', { href: `data:${type};base64,${part.raw}`, download: name, text: `${name} (${type})` });
    }
    if (typeof part.url === 'string') return el('p', {}, `${name}: `, el('code', { text: part.url }));
    return el('pre', { text: JSON.stringify(part) });
  }

  // ---- the chat ----

  class Turn {
    constructor(parts, files) {
      ui.empty.hidden = true;
      const attachments = files.map((f) => {
        const label = `${f.name} (${f.type || 'file'}, ${f.size} bytes)`;
        if (f.type.startsWith('image/')) {
          return el('span', { class: 'attachment' }, el('img', { src: URL.createObjectURL(f), alt: f.name }), label);
        }
        return el('span', { class: 'attachment', text: label });
      });
      const data = parts.filter((p) => p.data !== undefined).map((p) => el('pre', { class: 'json', text: JSON.stringify(p.data) }));
      ui.log.append(el('li', { class: 'turn user' },
        el('div', { class: 'turn-head' }, el('span', { class: 'who', text: 'You' })),
        parts.filter((p) => typeof p.text === 'string').map((p) => el('p', { text: p.text })),
        attachments, data));
      this.badge = stateBadge('submitted');
      this.taskLabel = el('code', { class: 'task-id' });
      this.cancel = el('button', { type: 'button', class: 'secondary small', hidden: true, text: 'Cancel', onclick: () => this.cancelTask() });
      this.progress = el('ol', { class: 'progress', 'aria-label': 'Progress' });
      this.artifacts = el('div', { class: 'artifacts' });
      this.final = el('div', { class: 'final' });
      this.node = el('li', { class: 'turn agent', 'aria-busy': 'true' },
        el('div', { class: 'turn-head' }, el('span', { class: 'who', text: 'Agent' }), this.badge, this.taskLabel, this.cancel),
        this.progress, this.artifacts, this.final);
      this.artifactNodes = new Map();
      ui.log.append(this.node);
      this.scroll();
    }

    scroll() {
      ui.log.scrollTop = ui.log.scrollHeight;
    }

    setState(name) {
      this.state = name;
      this.badge.dataset.state = name;
      this.badge.textContent = name;
      const settled = TERMINAL.has(name) || INTERRUPTED.has(name);
      this.cancel.hidden = !this.taskId || settled;
      if (settled) {
        this.node.removeAttribute('aria-busy');
        state.live.delete(this.taskId);
      } else if (this.taskId) {
        state.live.add(this.taskId);
      }
    }

    setTask(task) {
      this.taskId = task.id;
      this.taskLabel.textContent = shortId(task.id);
      this.taskLabel.title = task.id;
      this.node.dataset.taskId = task.id;
      rememberContext(task.contextId);
    }

    status(status) {
      const name = stateName(status.state);
      this.setState(name);
      const text = status.message ? textOf(status.message.parts) : '';
      if (!text) return;
      if (name === 'working' || name === 'submitted') {
        this.progress.append(el('li', { text }));
      } else {
        this.final.replaceChildren(...status.message.parts.map(renderPart));
      }
    }

    artifact(artifact, append) {
      let box = this.artifactNodes.get(artifact.artifactId);
      if (!box) {
        box = el('section', { class: 'artifact' }, el('h3', { text: artifact.name || 'artifact' }));
        this.artifactNodes.set(artifact.artifactId, box);
        this.artifacts.append(box);
      } else if (!append) {
        box.replaceChildren(box.firstChild);
      }
      box.append(...(artifact.parts || []).map(renderPart));
    }

    event(result) {
      if (result.task) {
        this.setTask(result.task);
        for (const a of result.task.artifacts || []) this.artifact(a, false);
        this.status(result.task.status || {});
        refreshTasks();
      } else if (result.message) {
        rememberContext(result.message.contextId);
        this.setState('replied');
        this.final.replaceChildren(...(result.message.parts || []).map(renderPart));
      } else if (result.statusUpdate) {
        this.status(result.statusUpdate.status || {});
      } else if (result.artifactUpdate) {
        this.artifact(result.artifactUpdate.artifact || {}, result.artifactUpdate.append);
      }
      this.scroll();
    }

    fail(error) {
      this.setState(this.taskId ? this.state || 'unknown' : 'error');
      this.node.removeAttribute('aria-busy');
      state.live.delete(this.taskId);
      this.final.append(el('p', { class: 'error', role: 'alert', text: error.message }));
    }

    async cancelTask() {
      try {
        await rpc('CancelTask', { id: this.taskId });
      } catch (e) {
        this.final.append(el('p', { class: 'error', role: 'alert', text: e.message }));
      }
      refreshTasks();
    }
  }

  function rememberContext(contextId) {
    if (!contextId) return;
    state.contextId = contextId;
    ui.context.textContent = `context ${shortId(contextId)}`;
    ui.context.title = contextId;
  }

  const MEDIA_TYPES = {
    csv: 'text/csv', tsv: 'text/tab-separated-values', json: 'application/json', txt: 'text/plain',
    png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', gif: 'image/gif', webp: 'image/webp', bmp: 'image/bmp',
  };

  async function filePart(file) {
    const bytes = new Uint8Array(await file.arrayBuffer());
    let binary = '';
    for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    const ext = (file.name.split('.').pop() || '').toLowerCase();
    return { raw: btoa(binary), mediaType: file.type || MEDIA_TYPES[ext] || 'application/octet-stream', filename: file.name };
  }

  // The message's parts: the text, each file, the JSON data; null when the
  // JSON does not parse (said next to its box).
  async function messageParts() {
    const parts = [];
    const text = ui.message.value.trim();
    if (text) parts.push({ text });
    const files = [...ui.file.files];
    for (const f of files) parts.push(await filePart(f));
    const json = ui.data.value.trim();
    ui.dataError.hidden = true;
    ui.data.removeAttribute('aria-invalid');
    if (json) {
      try {
        parts.push({ data: JSON.parse(json) });
      } catch (e) {
        ui.dataError.textContent = `Not JSON: ${e.message}`;
        ui.dataError.hidden = false;
        ui.data.setAttribute('aria-invalid', 'true');
        ui.attach.open = true;
        ui.data.focus();
        return null;
      }
    }
    return { parts, files };
  }

  async function send(event) {
    event.preventDefault();
    const built = await messageParts();
    if (!built) return; // the JSON box has the focus and says why
    if (!built.parts.length) {
      ui.message.focus();
      return;
    }
    const message = { messageId: crypto.randomUUID(), role: 'ROLE_USER', parts: built.parts };
    if (state.contextId) message.contextId = state.contextId;
    if (state.waitingTaskId) message.taskId = state.waitingTaskId;
    ui.message.value = '';
    ui.file.value = '';
    ui.data.value = '';
    const turn = new Turn(built.parts, built.files);
    state.waitingTaskId = null;
    try {
      for await (const result of stream('SendStreamingMessage', { message })) turn.event(result);
      if (turn.state === 'submitted' || turn.state === 'working') turn.fail(new Error('the stream ended before the task did'));
    } catch (e) {
      turn.fail(e);
    }
    if (INTERRUPTED.has(turn.state)) state.waitingTaskId = turn.taskId;
    refreshTasks();
    ui.message.focus();
  }

  // ---- the task list ----

  async function refreshTasks() {
    clearTimeout(state.refreshTimer);
    let result;
    try {
      result = await rpc('ListTasks', { pageSize: 20, historyLength: 0 });
    } catch (e) {
      ui.tasksStatus.textContent = `Tasks not listed: ${e.message}`;
      if (state.live.size) state.refreshTimer = setTimeout(refreshTasks, 2000);
      return;
    }
    const tasks = result.tasks || [];
    ui.tasks.replaceChildren(...tasks.map(taskRow));
    const total = typeof result.totalSize === 'number' ? result.totalSize : tasks.length;
    ui.tasksStatus.textContent = tasks.length ? `${tasks.length} of ${total} shown, newest first` : 'No tasks yet.';
    // Running tasks change by themselves: look again shortly.
    if (state.live.size) {
      state.refreshTimer = setTimeout(refreshTasks, 1000);
    } else if (tasks.some((t) => !TERMINAL.has(stateName(t.status && t.status.state)))) {
      state.refreshTimer = setTimeout(refreshTasks, 2000);
    }
  }

  function taskRow(task) {
    const name = stateName(task.status && task.status.state);
    const summary = task.status && task.status.message ? textOf(task.status.message.parts) : '';
    const label = shortId(task.id);
    const get = el('button', { type: 'button', class: 'secondary small', 'aria-label': `Get task ${label}`, text: 'Get', onclick: () => showTask(task.id) });
    const cancel = el('button', {
      type: 'button', class: 'secondary small', 'aria-label': `Cancel task ${label}`, text: 'Cancel',
      disabled: TERMINAL.has(name), onclick: () => cancelTask(task.id, cancel),
    });
    return el('tr', { 'data-task-id': task.id, 'data-state': name },
      el('td', {}, el('code', { title: task.id, text: label })),
      el('td', {}, stateBadge(name)),
      el('td', { class: 'summary', title: summary, text: summary || '—' }),
      el('td', { class: 'actions' }, get, cancel));
  }

  async function cancelTask(id, button) {
    button.disabled = true;
    try {
      const task = await rpc('CancelTask', { id });
      ui.tasksStatus.textContent = `Task ${shortId(id)} is ${stateName(task.status && task.status.state)}.`;
    } catch (e) {
      ui.tasksStatus.textContent = `Not canceled: ${e.message}`;
    }
    await refreshTasks();
  }

  async function showTask(id) {
    let task;
    try {
      task = await rpc('GetTask', { id, historyLength: 10 });
    } catch (e) {
      ui.detail.replaceChildren(el('p', { class: 'error', role: 'alert', text: e.message }));
      ui.detail.hidden = false;
      return;
    }
    const name = stateName(task.status && task.status.state);
    const rows = [['id', task.id], ['context', task.contextId], ['updated', (task.status && task.status.timestamp) || '—'], ['messages', (task.history || []).length]];
    const parts = [
      el('h3', {}, 'Task ', el('code', { text: shortId(task.id) }), ' ', stateBadge(name)),
      facts(rows),
    ];
    if (task.status && task.status.message) parts.push(...task.status.message.parts.map(renderPart));
    for (const a of task.artifacts || []) {
      parts.push(el('section', { class: 'artifact' }, el('h3', { text: a.name || 'artifact' }), (a.parts || []).map(renderPart)));
    }
    ui.detail.replaceChildren(...parts);
    ui.detail.hidden = false;
    ui.detail.focus();
  }

  // ---- the card ----

  function renderCard(card) {
    document.title = `${card.name} — A2A playground`;
    ui.name.textContent = card.name;
    ui.description.textContent = card.description || '';
    const bindings = (card.supportedInterfaces || []).map((i) => i.protocolBinding).join(', ');
    const caps = card.capabilities || {};
    const info = facts([
      ['version', card.version || '—'],
      ['bindings', bindings || '—'],
      ['streaming', caps.streaming ? 'yes' : 'no'],
      ['push notifications', caps.pushNotifications ? 'yes' : 'no'],
    ]);
    const skills = (card.skills || []).map((skill) => el('li', {},
      el('h3', { text: skill.name || skill.id }),
      el('p', { class: 'small', text: skill.description || '' }),
      el('div', { class: 'examples' }, (skill.examples || []).map((example) => el('button', {
        type: 'button', text: example, 'aria-label': `Ask: ${example}`,
        onclick: () => { ui.message.value = example; ui.message.focus(); },
      })))));
    ui.card.replaceChildren(el('div', { class: 'card' }, info,
      el('p', { class: 'small' }, el('a', { href: CARD_PATH, text: 'The card as JSON' })),
      el('ul', { class: 'skills', 'aria-label': 'Skills' }, skills)));
    declareSchemes(card.securitySchemes || {});
  }

  // The schemes a browser can send: an API key in a header, a bearer token.
  function declareSchemes(schemes) {
    state.schemes = [];
    for (const [name, scheme] of Object.entries(schemes)) {
      const key = scheme.apiKeySecurityScheme;
      const http = scheme.httpAuthSecurityScheme;
      if (key && (key.location || '').toLowerCase() === 'header') {
        state.schemes.push({ label: `${name}: ${key.name} header`, header: key.name, prefix: '' });
      } else if (http && /^bearer$/i.test(http.scheme || '')) {
        state.schemes.push({ label: `${name}: Authorization: Bearer`, header: 'Authorization', prefix: 'Bearer ' });
      }
    }
    ui.scheme.replaceChildren(...state.schemes.map((s) => el('option', { text: s.label })));
    ui.credentials.hidden = state.schemes.length === 0;
  }

  async function loadCard() {
    try {
      const resp = await fetch(CARD_PATH, { headers: { Accept: 'application/json' } });
      if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
      renderCard(await resp.json());
    } catch (e) {
      ui.card.replaceChildren(el('p', { class: 'error', role: 'alert', text: `The agent card could not be read: ${e.message}` }));
    }
  }

  // ---- wiring ----

  ui.form.addEventListener('submit', send);
  ui.message.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      ui.form.requestSubmit();
    }
  });
  ui.refresh.addEventListener('click', refreshTasks);
  ui.newConversation.addEventListener('click', () => {
    state.contextId = null;
    state.waitingTaskId = null;
    ui.context.textContent = 'new conversation';
    ui.message.focus();
  });
  ui.secret.addEventListener('change', refreshTasks);
  // Enter in the key field applies it; nothing is posted anywhere.
  $('credentials-form').addEventListener('submit', (e) => {
    e.preventDefault();
    refreshTasks();
  });

  loadCard().then(refreshTasks);
})();
