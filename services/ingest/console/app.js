/*
 * outbound web console: plain JavaScript, no build step, no third-party code.
 * It calls the JSON API under /api/v1 with the API key the user signs in
 * with, kept in sessionStorage only (gone when the tab closes). Everything
 * that comes from the API or the user is inserted as text (textContent and
 * text nodes, never innerHTML), and the page's Content-Security-Policy
 * refuses inline script and style. The call-control document's parts (the
 * deployment's Application editor, the call page's verbs) are in app_doc.js.
 */
'use strict';
(function () {
  const KEY_ITEM = 'outbound.apiKey';
  const POLL_MS = 2000;
  const main = document.getElementById('main');
  const noticeBox = document.getElementById('notice');
  const signOutButton = document.getElementById('sign-out');
  const navDeployments = document.getElementById('nav-deployments');
  let timers = [];        // intervals of the current view, cleared on navigation
  let viewToken = 0;      // bumps on navigation, so late answers of old views are dropped
  let appDoc = null;      // app_doc.js's editor and call section, made once the helpers exist

  const RESULTS = ['voice', 'answeringmachine', 'fax', 'busy', 'noanswer', 'informationtone',
    'linefailure', 'noattempt', 'unknown'];
  const STATUSES = ['completed', 'failed', 'uncalled'];

  /* ---- DOM helpers: text only ---- */

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    append(node, children);
    return node;
  }

  function setAttrs(node, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'text') node.textContent = String(v);
      else if (k === 'class') node.className = v;
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else if (v === true) node.setAttribute(k, '');
      else node.setAttribute(k, String(v));
    }
  }

  function append(node, children) {
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function notice(msg, isError) {
    clear(noticeBox);
    if (msg) noticeBox.appendChild(el('p', { class: isError ? 'error' : '', text: msg }));
  }

  function badge(text) {
    return el('span', { class: 'badge ' + (text || ''), text: text || '—' });
  }

  function fmtTime(iso) {
    if (!iso) return '—';
    const d = new Date(iso);
    return isNaN(d) ? String(iso) : d.toLocaleString();
  }

  function fmtMs(ms) {
    if (ms === null || ms === undefined) return '—';
    return ms >= 1000 ? (ms / 1000).toFixed(1) + ' s' : ms + ' ms';
  }

  // The audio detector's rule, confidence and beep, when one listened.
  function detectedBy(a) {
    if (!a.decided_by) return '—';
    let text = a.decided_by.replace(/_/g, ' ') + ' (' + Math.round(a.confidence * 100) + '%)';
    if (a.beep) text += ', beep at ' + fmtMs(a.beep_ms);
    return text;
  }

  function fmtNum(n) {
    return n === null || n === undefined ? '—' : Number(n).toLocaleString();
  }

  function every(fn, ms) {
    timers.push(setInterval(fn, ms));
  }

  /* ---- the API ---- */

  class ApiError extends Error {
    constructor(status, problem) {
      super((problem && (problem.detail || problem.title)) || ('HTTP ' + status));
      this.status = status;
      this.problem = problem || {};
    }
  }

  function apiKey() {
    return sessionStorage.getItem(KEY_ITEM);
  }

  async function api(method, path, body, checkingKey) {
    const headers = { Authorization: 'Bearer ' + apiKey() };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const resp = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store', credentials: 'omit',
    });
    const text = await resp.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (resp.status === 401 && !checkingKey) {
      signOut('Your API key was refused; sign in again.');
      throw new ApiError(401, data);
    }
    if (!resp.ok) throw new ApiError(resp.status, data);
    return data;
  }

  function query(params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== '' && v !== null && v !== undefined) q.set(k, v);
    const s = q.toString();
    return s ? '?' + s : '';
  }

  function enc(id) {
    return encodeURIComponent(id);
  }

  /* ---- sign-in ---- */

  function signOut(why) {
    sessionStorage.removeItem(KEY_ITEM);
    notice(why || 'Signed out.', !!why);
    if (location.hash && location.hash !== '#/') location.hash = '#/';
    else route();
  }

  function renderSignIn() {
    document.title = 'Sign in · outbound';
    signOutButton.hidden = true;
    navDeployments.hidden = true;
    const input = el('input', { type: 'password', id: 'api-key', name: 'api-key', autocomplete: 'off',
      required: true, spellcheck: 'false', 'aria-describedby': 'api-key-hint' });
    const err = el('p', { class: 'error', role: 'alert' });
    const form = el('form', { class: 'panel signin', 'aria-labelledby': 'signin-title' },
      el('h1', { id: 'signin-title', text: 'Sign in' }),
      el('label', { for: 'api-key', text: 'API key' }), input,
      el('p', { class: 'hint', id: 'api-key-hint',
        text: 'Kept in this tab only (sessionStorage); closing the tab signs you out.' }),
      err,
      el('button', { type: 'submit', text: 'Sign in' }));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      err.textContent = '';
      const key = input.value.trim();
      if (!key) return;
      sessionStorage.setItem(KEY_ITEM, key);
      try {
        await api('GET', '/api/v1/applications?limit=1', undefined, true);
        notice('');
        route();
      } catch (e) {
        sessionStorage.removeItem(KEY_ITEM);
        notice('');
        err.textContent = e.status === 401 ? 'That API key is not valid.' : 'Cannot sign in: ' + e.message;
      }
    });
    clear(main);
    main.appendChild(form);
    input.focus();
  }

  /* ---- deployments ---- */

  async function renderDeployments(token) {
    document.title = 'Deployments · outbound';
    const body = el('div', { id: 'deployments' }, el('p', { class: 'muted', text: 'Loading…' }));
    clear(main);
    main.append(el('h1', { text: 'Deployments' }),
      el('p', { class: 'sub', text: 'Every application of your account and the outbound queues of its deployments.' }),
      body);
    let last = null;
    async function load() {
      const [apps, deps] = await Promise.all([
        api('GET', '/api/v1/applications?limit=1000'),
        api('GET', '/api/v1/deployments?limit=1000'),
      ]);
      const summaries = await Promise.all(deps.deployments.map((d) =>
        api('GET', '/api/v1/deployments/' + enc(d.deployment_id) + '/summary').catch(() => null)));
      if (token !== viewToken) return;
      // Rebuilt only when something changed, so keyboard focus stays put.
      const snapshot = JSON.stringify([apps, deps, summaries]);
      if (snapshot === last) return;
      last = snapshot;
      clear(body);
      if (!apps.applications.length) {
        body.appendChild(el('p', { class: 'panel', text: 'This account has no applications yet.' }));
        return;
      }
      for (const app of apps.applications) {
        const mine = deps.deployments.map((d, i) => [d, summaries[i]])
          .filter(([d]) => d.application_id === app.application_id);
        const section = el('section', { class: 'panel', 'aria-label': 'Application ' + app.name },
          el('h2', { text: app.name }),
          app.start_url ? el('p', { class: 'sub mono', text: app.start_url }) : null);
        if (!mine.length) {
          section.appendChild(el('p', { class: 'muted', text: 'No deployments.' }));
        } else {
          const rows = mine.map(([d, s]) => {
            const st = (s && s.states) || {};
            const win = s && s.window;
            const winText = !d.campaign_window ? 'always open'
              : win && win.open === true ? 'open' : win && win.open === false ? 'closed' : 'per callee';
            return el('tr', null,
              el('td', null, el('a', { href: '#/deployments/' + d.deployment_id, text: d.name })),
              el('td', { class: 'num', text: fmtNum(d.capacity) }),
              el('td', null, badge(!d.active ? 'inactive' : d.paused ? 'paused' : 'running')),
              el('td', null, winText === 'open' || winText === 'closed' ? badge(winText) : winText),
              el('td', { class: 'num', text: fmtNum(s && s.pending ? s.pending.total : null) }),
              el('td', { class: 'num', text: fmtNum(s ? s.in_flight : null) }),
              el('td', { class: 'num', text: fmtNum(st.completed) }),
              el('td', null, el('a', { class: 'button secondary', href: '#/deployments/' + d.deployment_id,
                text: 'Queue', 'aria-label': 'Open the queue of ' + d.name })));
          });
          section.appendChild(el('div', { class: 'table-wrap' }, el('table', null,
            el('thead', null, el('tr', null,
              el('th', { text: 'Deployment' }), el('th', { class: 'num', text: 'Capacity' }),
              el('th', { text: 'State' }), el('th', { text: 'Window' }),
              el('th', { class: 'num', text: 'Pending' }), el('th', { class: 'num', text: 'In flight' }),
              el('th', { class: 'num', text: 'Completed' }), el('th', { text: '' }))),
            el('tbody', null, rows))));
        }
        body.appendChild(section);
      }
    }
    await load();
    every(() => load().catch(() => {}), 5000);
  }

  /* ---- a deployment's queue ---- */

  async function renderQueue(token, depId) {
    const dep = await api('GET', '/api/v1/deployments/' + enc(depId));
    const app = await api('GET', '/api/v1/applications/' + enc(dep.application_id)).catch(() => null);
    if (token !== viewToken) return;
    const appName = app ? app.name : 'Application';
    document.title = appName + ' · ' + dep.name + ' · outbound';
    const stats = el('div', { class: 'stats', id: 'stats' });
    const pauseBtn = el('button', { type: 'button', class: 'secondary', id: 'pause', text: 'Pause' });
    const actions = el('div', { class: 'actions' },
      el('button', { type: 'button', id: 'queue-calls', text: 'Queue Calls', onclick: () => openUpload(depId, refreshAll) }),
      pauseBtn,
      el('button', { type: 'button', class: 'danger', id: 'cancel-queue', text: 'Cancel queue', onclick: cancelQueue }));
    const charts = el('div', { class: 'charts', id: 'charts' });
    let paused = dep.paused;

    clear(main);
    main.append(
      el('p', { class: 'sub' }, el('a', { href: '#/', text: '← Deployments' })),
      el('h1', { id: 'app-name', text: appName }),
      el('p', { class: 'sub' }, 'Outbound queue of deployment ', el('strong', { text: dep.name }),
        ' · ', el('span', { class: 'mono', text: dep.deployment_id })),
      actions, stats, appDoc.editor(dep));

    pauseBtn.addEventListener('click', async () => {
      try {
        await api('POST', '/api/v1/deployments/' + enc(depId) + (paused ? ':resume' : ':pause'));
        notice(paused ? 'Queue resumed.' : 'Queue paused: no new calls are dialed; calls in progress finish.');
        await refreshSummary();
      } catch (e) { notice('Could not change the queue: ' + e.message, true); }
    });

    async function cancelQueue() {
      const ok = await confirmDialog('Cancel the queue?',
        'Every call of ' + dep.name + ' that has not started dialing ends as uncalled (cancelled). Calls in progress finish.',
        'Cancel queue');
      if (!ok) return;
      try {
        await api('POST', '/api/v1/deployments/' + enc(depId) + ':cancel');
        notice('Queue cancelled: the pending calls accepted until now will not be dialed.');
        setTimeout(refreshAll, 800);
      } catch (e) { notice('Could not cancel the queue: ' + e.message, true); }
    }

    async function refreshSummary() {
      const s = await api('GET', '/api/v1/deployments/' + enc(depId) + '/summary');
      if (token !== viewToken) return;
      paused = s.paused;
      pauseBtn.textContent = paused ? 'Resume' : 'Pause';
      const win = s.window || {};
      const winText = !win.definition ? 'always open' : win.open === true ? 'open'
        : win.open === false ? 'closed' + (win.next_open ? ' until ' + fmtTime(win.next_open) : '') : 'per callee';
      const items = [
        ['State', !s.active ? 'inactive' : s.paused ? 'paused' : 'running'],
        ['Window', winText],
        ['Capacity', fmtNum(s.capacity)],
        ['In flight', fmtNum(s.in_flight)],
        ['Pending', fmtNum(s.pending.total)],
        ['Completed (answered)', fmtNum(s.statuses.completed)],
        ['Failed', fmtNum(s.statuses.failed)],
        ['Uncalled', fmtNum(s.statuses.uncalled)],
      ];
      clear(stats);
      for (const [k, v] of items) {
        stats.appendChild(el('div', { class: 'stat', 'data-stat': k }, el('div', { class: 'v', text: v }), el('div', { class: 'k', text: k })));
      }
    }

    const lists = callLists(token, depId);
    main.append(lists.node, el('h2', { text: 'Results' }), charts);

    async function refreshCharts() {
      const page = await api('GET', '/api/v1/deployments/' + enc(depId) + '/calls?limit=1000');
      if (token !== viewToken) return;
      drawCharts(charts, page.calls);
    }

    function refreshAll() {
      return Promise.all([refreshSummary(), lists.refresh(), refreshCharts()]).catch((e) => notice(e.message, true));
    }
    await refreshAll();
    every(() => refreshSummary().catch(() => {}), POLL_MS);
    every(() => lists.refresh().catch(() => {}), POLL_MS);
    every(() => refreshCharts().catch(() => {}), 10000);
  }

  /* Pending and Completed tabs, filters, search and cursor pages. */
  function callLists(token, depId) {
    let tab = 'pending';
    let cursors = [null]; // cursor of each page seen; the last is the current page's
    let next = null;
    const tabs = {};
    const tabBar = el('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Calls' });
    for (const [id, label] of [['pending', 'Pending'], ['completed', 'Completed']]) {
      tabs[id] = el('button', { type: 'button', role: 'tab', id: 'tab-' + id, 'aria-controls': 'calls-panel',
        'aria-selected': id === tab ? 'true' : 'false', text: label });
      tabs[id].addEventListener('click', () => selectTab(id));
      tabs[id].addEventListener('keydown', (ev) => {
        if (ev.key === 'ArrowRight' || ev.key === 'ArrowLeft') {
          const other = id === 'pending' ? 'completed' : 'pending';
          selectTab(other);
          tabs[other].focus();
        }
      });
      tabBar.appendChild(tabs[id]);
    }
    const status = el('select', { id: 'filter-status', name: 'status' }, el('option', { value: '', text: 'any status' }),
      STATUSES.map((s) => el('option', { value: s, text: s })));
    const result = el('select', { id: 'filter-result', name: 'result' }, el('option', { value: '', text: 'any result' }),
      RESULTS.map((s) => el('option', { value: s, text: s })));
    const number = el('input', { type: 'search', id: 'search-number', name: 'phone_number', placeholder: '+12125550100' });
    const ref = el('input', { type: 'search', id: 'search-reference', name: 'message_reference', placeholder: 'exact reference' });
    const statusWrap = el('div', null, el('label', { for: 'filter-status', text: 'Status' }), status);
    const filters = el('form', { class: 'row', id: 'filters', role: 'search' },
      statusWrap,
      el('div', null, el('label', { for: 'filter-result', text: 'Result' }), result),
      el('div', null, el('label', { for: 'search-number', text: 'Number' }), number),
      el('div', null, el('label', { for: 'search-reference', text: 'Message reference' }), ref),
      el('button', { type: 'submit', text: 'Search' }),
      el('button', { type: 'reset', class: 'secondary', text: 'Clear' }));
    const error = el('p', { class: 'error', role: 'alert' });
    const tbody = el('tbody');
    const older = el('button', { type: 'button', class: 'secondary', id: 'older', text: 'Older →' });
    const newer = el('button', { type: 'button', class: 'secondary', id: 'newer', text: '← Newer' });
    const pageInfo = el('span', { class: 'muted' });
    const head = el('thead');
    const table = el('table', { id: 'calls' }, head, tbody);
    const panel = el('div', { id: 'calls-panel', role: 'tabpanel', 'aria-labelledby': 'tab-pending' },
      filters, error,
      el('div', { class: 'table-wrap' }, table),
      el('div', { class: 'pager' }, newer, older, pageInfo));

    filters.addEventListener('submit', (ev) => { ev.preventDefault(); cursors = [null]; refresh(); });
    filters.addEventListener('reset', () => setTimeout(() => { cursors = [null]; refresh(); }, 0));
    older.addEventListener('click', () => { if (next) { cursors.push(next); refresh(); } });
    newer.addEventListener('click', () => { if (cursors.length > 1) { cursors.pop(); refresh(); } });

    function selectTab(id) {
      tab = id;
      cursors = [null];
      for (const [k, b] of Object.entries(tabs)) b.setAttribute('aria-selected', k === id ? 'true' : 'false');
      panel.setAttribute('aria-labelledby', 'tab-' + id);
      statusWrap.hidden = id === 'pending';
      table.removeAttribute('data-tab');
      lastPage = null;
      clear(tbody);
      tbody.appendChild(el('tr', null, el('td', { colspan: 8, class: 'muted', text: 'Loading…' })));
      refresh();
    }
    statusWrap.hidden = true;

    function header() {
      clear(head);
      head.appendChild(el('tr', null, el('th', { text: 'Number' }), el('th', { text: 'Message reference' }),
        el('th', { text: tab === 'pending' ? 'State' : 'Status' }), el('th', { text: 'Result' }),
        el('th', { class: 'num', text: 'Attempts' }), el('th', { text: 'Accepted' }),
        el('th', { text: tab === 'pending' ? 'Next attempt' : 'Completed' }), el('th', { text: '' })));
    }

    let lastPage = null;
    let seq = 0; // only the latest request's answer is shown (tabs, filters and polls overlap)
    async function refresh() {
      const mine = ++seq;
      const params = {
        state: tab, result: result.value, phone_number: number.value.trim(),
        message_reference: ref.value, cursor: cursors[cursors.length - 1], limit: 25,
      };
      if (tab === 'completed') params.status = status.value;
      let page;
      try {
        page = await api('GET', '/api/v1/deployments/' + enc(depId) + '/calls' + query(params));
      } catch (e) {
        if (token !== viewToken || mine !== seq) return;
        const errs = (e.problem.errors || []).map((x) => x.message).join('; ');
        error.textContent = errs || e.message;
        return;
      }
      if (token !== viewToken || mine !== seq) return;
      error.textContent = '';
      next = page.next_cursor;
      pageInfo.textContent = 'Page ' + cursors.length + ' · refreshed ' + new Date().toLocaleTimeString();
      // Rebuilt only when something changed, so keyboard focus stays put.
      const snapshot = JSON.stringify([tab, page]);
      if (snapshot === lastPage) return;
      lastPage = snapshot;
      header();
      clear(tbody);
      table.setAttribute('data-tab', tab);
      if (!page.calls.length) {
        tbody.appendChild(el('tr', null, el('td', { colspan: 8, class: 'muted', text: 'No calls.' })));
      }
      for (const c of page.calls) {
        const cancel = c.state === 'queued'
          ? el('button', { type: 'button', class: 'link', text: 'Cancel', 'aria-label': 'Cancel call to ' + c.phone_number,
            onclick: () => cancelCall(c.call_id).then(refresh) })
          : null;
        tbody.appendChild(el('tr', { 'data-call-id': c.call_id },
          el('td', null, el('a', { href: '#/calls/' + c.call_id, class: 'mono', text: c.phone_number })),
          el('td', { class: 'ref', text: c.message_reference || '' }),
          el('td', null, badge(tab === 'pending' ? c.state : c.status)),
          el('td', { text: c.result || '—' }),
          el('td', { class: 'num', text: c.attempts_made + ' / ' + c.max_attempts }),
          el('td', { text: fmtTime(c.accepted_at) }),
          el('td', { text: fmtTime(tab === 'pending' ? c.next_attempt_at : c.completed_at) }),
          el('td', null, cancel)));
      }
      newer.disabled = cursors.length <= 1;
      older.disabled = !next;
    }

    return { node: el('section', { 'aria-label': 'Calls' }, tabBar, panel), refresh };
  }

  async function cancelCall(callId) {
    try {
      await api('POST', '/api/v1/calls/' + enc(callId) + ':cancel');
      notice('Call cancelled: it will not be dialed.');
    } catch (e) {
      notice('Could not cancel the call: ' + e.message, true);
    }
  }

  /* A modal confirmation (a <dialog>, not window.confirm). */
  function confirmDialog(title, text, yes) {
    return new Promise((resolve) => {
      const dlg = el('dialog', { id: 'confirm', 'aria-labelledby': 'confirm-title' },
        el('h2', { id: 'confirm-title', text: title }), el('p', { text }),
        el('div', { class: 'actions' },
          el('button', { type: 'button', class: 'danger', id: 'confirm-yes', text: yes, onclick: () => done(true) }),
          el('button', { type: 'button', class: 'secondary', text: 'Keep', onclick: () => done(false) })));
      function done(v) { dlg.close(); dlg.remove(); resolve(v); }
      dlg.addEventListener('cancel', () => { dlg.remove(); resolve(false); });
      document.body.appendChild(dlg);
      dlg.showModal();
    });
  }

  /* ---- CSV upload ---- */

  function randomId() {
    const b = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  }

  function openUpload(depId, onDone) {
    const file = el('input', { type: 'file', id: 'csv-file', accept: '.csv,text/csv', required: true,
      'aria-describedby': 'csv-hint' });
    const attempts = el('input', { type: 'number', id: 'max-attempts', min: 1, max: 10, placeholder: 'deployment default' });
    const wait = el('input', { type: 'number', id: 'retry-wait', min: 1, max: 2880, placeholder: 'deployment default' });
    const start = el('input', { type: 'datetime-local', id: 'range-start' });
    const end = el('input', { type: 'datetime-local', id: 'range-end' });
    const progress = el('progress', { id: 'upload-progress', max: 100, value: 0, hidden: true, 'aria-label': 'Upload progress' });
    const status = el('p', { id: 'upload-status', role: 'status' });
    const report = el('div', { id: 'upload-report' });
    const submit = el('button', { type: 'submit', id: 'upload-submit', text: 'Upload and queue' });
    const closeBtn = el('button', { type: 'button', class: 'secondary', text: 'Close', onclick: () => dlg.close() });
    const form = el('form', { method: 'dialog' },
      el('h2', { id: 'upload-title', text: 'Queue calls from a CSV file' }),
      el('label', { for: 'csv-file', text: 'CSV file' }), file,
      el('p', { class: 'hint', id: 'csv-hint',
        text: 'A header row names the columns: phone_number (or destination, phone, number), optional message_reference, max_attempts, …; other columns become call parameters.' }),
      el('div', { class: 'grid' },
        el('div', null, el('label', { for: 'max-attempts', text: 'Number of attempts' }), attempts),
        el('div', null, el('label', { for: 'retry-wait', text: 'Wait between attempts (minutes)' }), wait),
        el('div', null, el('label', { for: 'range-start', text: 'Call range start' }), start,
          el('p', { class: 'hint', text: 'not dialed before' })),
        el('div', null, el('label', { for: 'range-end', text: 'Call range end' }), end,
          el('p', { class: 'hint', text: 'never dialed after' }))),
      progress, status,
      el('div', { class: 'actions' }, submit, closeBtn),
      report);
    const dlg = el('dialog', { id: 'upload-dialog', 'aria-labelledby': 'upload-title' }, form);
    dlg.addEventListener('close', () => { dlg.remove(); if (onDone) onDone(); });
    const idemKey = 'console-' + randomId();

    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      clear(report);
      status.textContent = '';
      status.className = '';
      const f = file.files[0];
      if (!f) { status.textContent = 'Choose a CSV file.'; return; }
      const params = {};
      if (attempts.value) params.max_attempts = attempts.value;
      if (wait.value) params.retry_interval_s = Math.round(Number(wait.value) * 60);
      if (start.value) params.not_before = new Date(start.value).toISOString();
      if (end.value) params.expires_at = new Date(end.value).toISOString();
      const xhr = new XMLHttpRequest();
      xhr.open('POST', '/api/v1/deployments/' + enc(depId) + '/uploads' + query(params));
      xhr.setRequestHeader('Authorization', 'Bearer ' + apiKey());
      xhr.setRequestHeader('Content-Type', 'text/csv');
      xhr.setRequestHeader('Idempotency-Key', idemKey + '-' + f.name.length + '-' + f.size + '-' + f.lastModified + '-' + Object.values(params).join('_'));
      progress.hidden = false;
      progress.value = 0;
      submit.disabled = true;
      status.textContent = 'Uploading ' + f.name + '…';
      xhr.upload.addEventListener('progress', (e) => {
        if (e.lengthComputable) progress.value = Math.round((e.loaded / e.total) * 100);
      });
      xhr.upload.addEventListener('load', () => { progress.value = 100; status.textContent = 'Checking and queueing the rows…'; });
      xhr.addEventListener('load', () => {
        submit.disabled = false;
        let data = null;
        try { data = JSON.parse(xhr.responseText); } catch (e) { data = null; }
        if (xhr.status === 401) { dlg.close(); signOut('Your API key was refused; sign in again.'); return; }
        if (data && data.upload_id) {
          showReport(report, data);
          status.textContent = 'Upload ' + (data.status || 'done') + '.';
          if (xhr.status >= 400 && data.detail) status.textContent += ' ' + data.detail;
        } else {
          status.className = 'error';
          status.textContent = 'The upload was refused: ' + ((data && data.detail) || ('HTTP ' + xhr.status));
          if (data && data.errors) report.appendChild(errorTable(data.errors));
        }
      });
      xhr.addEventListener('error', () => {
        submit.disabled = false;
        status.className = 'error';
        status.textContent = 'The upload failed (network error); nothing was lost: retry.';
      });
      xhr.send(f);
    });
    document.body.appendChild(dlg);
    dlg.showModal();
    file.focus();
  }

  function errorTable(errors) {
    return el('div', { class: 'table-wrap' }, el('table', { id: 'rejected-rows' },
      el('thead', null, el('tr', null, el('th', { class: 'num', text: 'Row' }), el('th', { class: 'num', text: 'Line' }),
        el('th', { text: 'Column' }), el('th', { text: 'Reason' }))),
      el('tbody', null, errors.map((e) => el('tr', null,
        el('td', { class: 'num', text: e.row === undefined ? '' : e.row }),
        el('td', { class: 'num', text: e.line === undefined ? '' : e.line }),
        el('td', { text: e.field || '' }),
        el('td', { text: (e.message || '') + (e.code ? ' (' + e.code + ')' : '') }))))));
  }

  function showReport(node, up) {
    node.appendChild(el('div', { class: 'stats' },
      el('div', { class: 'stat' }, el('div', { class: 'v', id: 'report-queued', text: fmtNum(up.queued) }), el('div', { class: 'k', text: 'queued' })),
      el('div', { class: 'stat' }, el('div', { class: 'v', id: 'report-rejected', text: fmtNum(up.rejected) }), el('div', { class: 'k', text: 'rejected' })),
      el('div', { class: 'stat' }, el('div', { class: 'v', text: fmtNum(up.rows) }), el('div', { class: 'k', text: 'rows' }))));
    if (up.errors && up.errors.length) {
      node.appendChild(el('h3', { text: 'Rejected rows' }));
      node.appendChild(errorTable(up.errors));
    }
    const dl = el('button', { type: 'button', class: 'secondary', id: 'download-report', text: 'Download report (CSV)' });
    dl.addEventListener('click', async () => {
      try {
        const resp = await fetch('/api/v1/uploads/' + enc(up.upload_id) + '/report.csv',
          { headers: { Authorization: 'Bearer ' + apiKey() }, credentials: 'omit' });
        if (!resp.ok) throw new Error('HTTP ' + resp.status);
        const url = URL.createObjectURL(await resp.blob());
        const a = el('a', { href: url, download: 'upload-' + up.upload_id + '.csv' });
        document.body.appendChild(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 10000);
      } catch (e) { notice('Could not download the report: ' + e.message, true); }
    });
    node.appendChild(el('div', { class: 'actions' }, dl));
  }

  /* ---- charts (SVG, drawn from the latest calls) ---- */

  function drawCharts(node, calls) {
    clear(node);
    const counts = {};
    for (const c of calls) if (c.result) counts[c.result] = (counts[c.result] || 0) + 1;
    const entries = RESULTS.filter((r) => counts[r]).map((r) => [r, counts[r]]);
    node.appendChild(el('figure', { class: 'panel chart', id: 'chart-results' },
      el('figcaption', null, el('strong', { text: 'Results by callee type' }),
        el('span', { class: 'muted', text: ' (latest ' + calls.length + ' calls)' })),
      entries.length ? barChart(entries) : el('p', { class: 'muted', text: 'No results yet.' })));
    node.appendChild(el('figure', { class: 'panel chart', id: 'chart-time' },
      el('figcaption', null, el('strong', { text: 'Calls over time' }),
        el('span', { class: 'muted', text: ' (accepted and completed)' })),
      calls.length ? timeChart(calls) : el('p', { class: 'muted', text: 'No calls yet.' })));
  }

  function barChart(entries) {
    const W = 420, rowH = 24, left = 120, H = entries.length * rowH + 8;
    const max = Math.max(...entries.map((e) => e[1]));
    const s = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img',
      'aria-label': entries.map(([k, v]) => k + ' ' + v).join(', ') });
    entries.forEach(([k, v], i) => {
      const y = i * rowH + 4;
      const w = Math.max(2, ((W - left - 50) * v) / max);
      s.append(svg('text', { x: left - 6, y: y + 15, 'text-anchor': 'end' }, k),
        svg('rect', { class: 'bar', x: left, y: y + 2, width: w, height: rowH - 8, rx: 2 }),
        svg('text', { x: left + w + 6, y: y + 15 }, String(v)));
    });
    return s;
  }

  function timeChart(calls) {
    const W = 420, H = 150, pad = 28, n = 12;
    const acc = calls.map((c) => Date.parse(c.accepted_at)).filter((t) => !isNaN(t));
    const done = calls.map((c) => Date.parse(c.completed_at)).filter((t) => !isNaN(t));
    const all = acc.concat(done);
    const t0 = Math.min(...all), t1 = Math.max(...all, t0 + 1000);
    const step = (t1 - t0) / n;
    const bucket = (ts) => { const b = new Array(n).fill(0); for (const t of ts) b[Math.min(n - 1, Math.floor((t - t0) / step))]++; return b; };
    const a = bucket(acc), d = bucket(done);
    const max = Math.max(1, ...a, ...d);
    const bw = (W - pad * 2) / n;
    const s = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img',
      'aria-label': 'Calls accepted and completed from ' + new Date(t0).toLocaleTimeString() + ' to ' + new Date(t1).toLocaleTimeString() });
    s.append(svg('line', { class: 'axis', x1: pad, y1: H - pad, x2: W - pad, y2: H - pad }));
    for (let i = 0; i < n; i++) {
      const x = pad + i * bw;
      const ha = ((H - pad * 2) * a[i]) / max, hd = ((H - pad * 2) * d[i]) / max;
      s.append(svg('rect', { class: 'bar alt', x: x + 2, y: H - pad - ha, width: bw / 2 - 2, height: ha },
        svg('title', null, a[i] + ' accepted')),
      svg('rect', { class: 'bar', x: x + bw / 2, y: H - pad - hd, width: bw / 2 - 2, height: hd },
        svg('title', null, d[i] + ' completed')));
    }
    s.append(svg('text', { x: pad, y: H - 8 }, new Date(t0).toLocaleTimeString()),
      svg('text', { x: W - pad, y: H - 8, 'text-anchor': 'end' }, new Date(t1).toLocaleTimeString()),
      svg('text', { x: pad, y: 14 }, 'max ' + max + ' per ' + Math.max(1, Math.round(step / 1000)) + ' s'),
      svg('rect', { class: 'bar alt', x: W - 170, y: 5, width: 10, height: 10 }), svg('text', { x: W - 156, y: 14 }, 'accepted'),
      svg('rect', { class: 'bar', x: W - 95, y: 5, width: 10, height: 10 }), svg('text', { x: W - 81, y: 14 }, 'completed'));
    return s;
  }

  /* ---- one call ---- */

  async function renderCall(token, callId) {
    const wrap = el('div', { id: 'call' });
    let last = null;
    clear(main);
    main.appendChild(wrap);
    async function load() {
      const [c, dels] = await Promise.all([
        api('GET', '/api/v1/calls/' + enc(callId)),
        api('GET', '/api/v1/calls/' + enc(callId) + '/deliveries').catch(() => ({ deliveries: [] })),
      ]);
      if (token !== viewToken) return c;
      // Rebuilt only when something changed, so focus and selection stay put.
      const snapshot = JSON.stringify([c, dels]);
      if (snapshot === last) return c;
      last = snapshot;
      document.title = 'Call to ' + c.phone_number + ' · outbound';
      clear(wrap);
      const add = (...nodes) => append(wrap, nodes);
      const kv = (k, v) => [el('dt', { text: k }), el('dd', null, v instanceof Node ? v : String(v === null || v === undefined || v === '' ? '—' : v))];
      add(
        el('p', { class: 'sub' }, el('a', { href: '#/deployments/' + c.deployment_id, text: '← Queue' })),
        el('h1', null, 'Call to ', el('span', { class: 'mono', text: c.phone_number })),
        el('p', { class: 'sub mono', text: c.call_id }),
        c.state === 'queued'
          ? el('div', { class: 'actions' }, el('button', { type: 'button', class: 'danger', id: 'cancel-call', text: 'Cancel call',
            onclick: () => cancelCall(c.call_id).then(load) }))
          : null,
        el('section', { class: 'panel' }, el('dl', { class: 'kv', id: 'call-fields' },
          kv('State', badge(c.state)), kv('Status', c.status ? badge(c.status) : '—'),
          kv('Callee type', c.result), kv('Reason', c.reason),
          kv('Message reference', c.message_reference),
          kv('Attempts', c.attempts_made + ' of ' + c.max_attempts),
          kv('Duration', c.duration_s === null || c.duration_s === undefined ? '—' : c.duration_s + ' s'),
          kv('Caller id', c.caller_id), kv('Accepted', fmtTime(c.accepted_at)),
          kv('Next attempt', fmtTime(c.next_attempt_at)), kv('Waiting for', c.waiting_for),
          kv('Completed', fmtTime(c.completed_at)), kv('Digits gathered', c.digits),
          kv('Call parameters', el('pre', { class: 'mono', text: c.call_parameters ? JSON.stringify(c.call_parameters, null, 2) : '—' })))),
        el('h2', { text: 'Attempts' }),
        el('div', { class: 'table-wrap' }, el('table', { id: 'attempts' },
          el('thead', null, el('tr', null, ['#', 'Result', 'Reason', 'SIP', 'Detected by', 'Dialing', 'Connected', 'Ended'].map((h) => el('th', { text: h })),
            ['Ring', 'Talk', 'Decision'].map((h) => el('th', { class: 'num', text: h })))),
          el('tbody', null, c.attempts.length ? c.attempts.map((a) => el('tr', null,
            el('td', { text: a.attempt }), el('td', { text: a.result || a.state || '—' }), el('td', { text: a.reason || '—' }),
            el('td', { text: [a.sip_code, a.sip_reason].filter((v) => v !== null && v !== undefined).join(' ') || '—' }),
            el('td', { text: detectedBy(a) }),
            el('td', { text: fmtTime(a.dialing_at) }), el('td', { text: fmtTime(a.connected_at) }), el('td', { text: fmtTime(a.ended_at) }),
            el('td', { class: 'num', text: fmtMs(a.ring_ms) }), el('td', { class: 'num', text: fmtMs(a.talk_ms) }),
            el('td', { class: 'num', text: fmtMs(a.decision_ms) })))
            : el('tr', null, el('td', { colspan: 11, class: 'muted', text: 'Not dialed yet.' }))))),
        appDoc.callSection(c),
        el('h2', { text: 'Timeline' }),
        el('ol', { class: 'timeline', id: 'timeline' }, c.events.map((e) => el('li', null,
          el('strong', { text: e.type.replace(/^outbound\.call\./, '') }), ' ',
          el('span', { class: 'muted', text: fmtTime(e.time) }),
          e.data && (e.data.result || e.data.reason || e.data.attempt)
            ? el('div', { class: 'muted', text: ['attempt ' + (e.data.attempt || '—'), e.data.result, e.data.reason].filter(Boolean).join(' · ') })
            : null))),
        el('h2', { text: 'Webhook deliveries' }),
        dels.deliveries.length
          ? el('div', { class: 'table-wrap' }, el('table', { id: 'deliveries' },
            el('thead', null, el('tr', null, ['URL', 'State', 'Tries', 'Last status', 'Last error', 'Delivered', 'Next try'].map((h) => el('th', { text: h })))),
            el('tbody', null, dels.deliveries.map((d) => el('tr', null,
              el('td', { class: 'mono', text: d.url }), el('td', null, badge(d.state)), el('td', { text: d.attempts_made }),
              el('td', { text: d.last_status === null ? '—' : d.last_status }), el('td', { text: d.last_error || '—' }),
              el('td', { text: fmtTime(d.delivered_at) }), el('td', { text: fmtTime(d.next_attempt_at) }))))))
          : el('p', { class: 'muted', id: 'no-deliveries', text: 'No webhook for this call (no result_url), or not completed yet.' }));
      return c;
    }
    await load();
    // Webhook deliveries go on after the call completes, so this keeps polling.
    every(() => load().catch(() => {}), POLL_MS);
  }

  /* ---- routing ---- */

  async function route() {
    for (const t of timers) clearInterval(t);
    timers = [];
    const token = ++viewToken;
    if (!apiKey()) { renderSignIn(); return; }
    signOutButton.hidden = false;
    navDeployments.hidden = false;
    const h = location.hash.replace(/^#/, '') || '/';
    let m;
    try {
      if ((m = h.match(/^\/deployments\/([0-9a-f-]{36})$/))) await renderQueue(token, m[1]);
      else if ((m = h.match(/^\/calls\/([0-9a-f-]{36})$/))) await renderCall(token, m[1]);
      else await renderDeployments(token);
    } catch (e) {
      if (token !== viewToken || e.status === 401) return;
      clear(main);
      main.append(el('h1', { text: e.status === 404 ? 'Not found' : 'Something went wrong' }),
        el('p', { class: 'error', text: e.message }), el('p', null, el('a', { href: '#/', text: 'Back to deployments' })));
    }
    main.focus({ preventScroll: true });
  }

  appDoc = outboundAppDoc({ el, api, enc, clear, fmtMs, apiKey, signOut, confirmDialog, ApiError });
  signOutButton.addEventListener('click', () => signOut());
  window.addEventListener('hashchange', () => { notice(''); route(); });
  route();
}());
