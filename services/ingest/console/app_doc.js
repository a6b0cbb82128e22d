/*
 * outbound web console, the call-control document's parts (loaded before
 * app.js, which hands them its DOM and API helpers): the deployment's
 * Application editor, with a Preview of each say and play verb played from
 * the audio POST /api/v1/app:preview renders, and the call page's table of
 * the verbs each attempt executed. As in app.js, everything from the API or
 * the user is inserted as text, never as markup.
 */
'use strict';
// Called once by app.js; a classic script's function is its only global.
// eslint-disable-next-line no-unused-vars
function outboundAppDoc(ui) {
  const { el, api, enc, clear, fmtMs, apiKey, signOut, confirmDialog, ApiError } = ui;

  const EXAMPLE = {
    verbs: [
      { verb: 'say', text: 'Hello {{name}}, this is a reminder of your appointment tomorrow at {{time}}.' },
      { verb: 'gather', num_digits: 1, timeout_s: 5, action_url: 'https://example.com/confirm',
        prompt: [{ verb: 'say', text: 'Press 1 to confirm, or 2 to talk to us.' }] },
      { verb: 'say', text: 'Goodbye.' },
    ],
    machine: [
      { verb: 'say', text: 'Hello {{name}}, this is a reminder of your appointment tomorrow at {{time}}. Goodbye.' },
    ],
  };

  /* The lists of a document: [path, verbs] of its verbs, its machine verbs
   * and every gather's prompt, in order. */
  function lists(doc) {
    const out = [];
    const walk = (path, verbs) => {
      if (!Array.isArray(verbs)) return;
      out.push([path, verbs]);
      verbs.forEach((v, i) => {
        if (v && typeof v === 'object' && v.verb === 'gather') walk(`${path}[${i}].prompt`, v.prompt);
      });
    };
    if (Array.isArray(doc)) walk('verbs', doc);
    else if (doc && typeof doc === 'object') { walk('verbs', doc.verbs); walk('machine', doc.machine); }
    return out;
  }

  function describe(doc) {
    if (!doc) return 'none: calls run what start_url answers';
    const count = (l) => (Array.isArray(l) ? l.length : 0);
    const n = Array.isArray(doc) ? doc.length : count(doc.verbs);
    const m = Array.isArray(doc) ? 0 : count(doc.machine);
    return n + (n === 1 ? ' verb' : ' verbs') + (m ? ', ' + m + (m === 1 ? ' machine verb' : ' machine verbs') : '');
  }

  /* A refusal as lines: each field error ("app: verbs[0] (gather): ..."),
   * else the problem's detail. */
  function problemLines(e) {
    const errs = (e.problem && e.problem.errors) || [];
    if (!errs.length) return [e.message];
    return errs.map((x) => {
      const msg = String(x.message || x.code || '');
      return x.field && !msg.startsWith(x.field + ':') ? x.field + ': ' + msg : msg;
    });
  }

  /* The deployment page's "Application" panel: the static document as JSON
   * in a textarea, Save (PATCH the deployment's app), Clear (app: null),
   * and a Preview button for each say and play verb. */
  function editor(dep) {
    const depId = dep.deployment_id;
    const text = el('textarea', { id: 'app-json', class: 'mono', rows: 14, spellcheck: 'false',
      autocomplete: 'off', 'aria-describedby': 'app-hint' });
    const summary = el('span', { class: 'muted', id: 'app-summary' });
    const status = el('p', { id: 'app-status', role: 'status' });
    const errors = el('div', { id: 'app-error', class: 'error', role: 'alert' });
    const previews = el('ul', { id: 'app-previews', class: 'previews' });
    const audio = el('audio', { id: 'app-audio', controls: true, hidden: true, preload: 'auto' });
    const save = el('button', { type: 'button', id: 'app-save', text: 'Save' });
    const clearBtn = el('button', { type: 'button', class: 'danger', id: 'app-clear', text: 'Clear' });
    const example = el('button', { type: 'button', class: 'secondary', id: 'app-example', text: 'Insert example' });
    let audioUrl = null;

    function show(doc) {
      text.value = doc ? JSON.stringify(doc, null, 2) : '';
      summary.textContent = '(' + describe(doc) + ')';
      listPreviews();
    }

    function message(msg, lines) {
      status.textContent = msg || '';
      clear(errors);
      if (lines && lines.length) errors.appendChild(el('ul', null, lines.map((l) => el('li', { text: l }))));
    }

    async function store(doc, done) {
      save.disabled = clearBtn.disabled = true;
      try {
        const d = await api('PATCH', '/api/v1/deployments/' + enc(depId), { app: doc });
        show(d.app === undefined ? doc : d.app);
        message(done);
      } catch (e) {
        if (e.status !== 401) message('', ['Not saved: ' + (e.status ? 'HTTP ' + e.status : 'network error')].concat(problemLines(e)));
      } finally {
        save.disabled = clearBtn.disabled = false;
      }
    }

    save.addEventListener('click', () => {
      listPreviews();
      if (!text.value.trim()) { message('', ['The document is empty: use Clear to remove the application.']); return; }
      let doc;
      try { doc = JSON.parse(text.value); } catch (e) { message('', ['Not saved: the document is not JSON (' + e.message + ').']); return; }
      store(doc, 'Saved: calls dialed from now on run this document.');
    });
    clearBtn.addEventListener('click', async () => {
      const ok = await confirmDialog('Clear the application?',
        'Calls of ' + dep.name + ' dialed from now on no longer run this document; its start_url (if any) decides what they hear.',
        'Clear');
      if (ok) store(null, 'Cleared: the deployment has no application document.');
    });
    example.addEventListener('click', () => {
      text.value = JSON.stringify(EXAMPLE, null, 2);
      message('Example inserted; Save to use it.');
      listPreviews();
    });

    let debounce = null;
    text.addEventListener('input', () => { clearTimeout(debounce); debounce = setTimeout(listPreviews, 300); });

    /* One Preview button per say and play verb of the text as it is now. */
    function listPreviews() {
      clear(previews);
      if (!text.value.trim()) {
        previews.appendChild(el('li', { class: 'muted', text: 'No document: nothing to preview.' }));
        return;
      }
      let doc;
      try { doc = JSON.parse(text.value); } catch (e) {
        previews.appendChild(el('li', { class: 'muted', text: 'Not JSON yet (' + e.message + ').' }));
        return;
      }
      let n = 0;
      for (const [path, verbs] of lists(doc)) {
        verbs.forEach((v, i) => {
          if (!v || (v.verb !== 'say' && v.verb !== 'play')) return;
          const where = `${path}[${i}]`;
          const what = v.verb === 'say' ? v.text : v.url;
          const btn = el('button', { type: 'button', class: 'secondary', 'data-path': where, text: 'Preview',
            'aria-label': 'Preview ' + where + ' (' + v.verb + ')' });
          btn.addEventListener('click', () => preview(where, btn));
          previews.appendChild(el('li', null, btn, ' ', el('span', { class: 'mono', text: where }), ' ',
            el('strong', { text: v.verb }), ' ', el('span', { class: 'quote', text: String(what === undefined ? '' : what) })));
          n++;
        });
      }
      if (!n) previews.appendChild(el('li', { class: 'muted', text: 'No say or play verb to preview.' }));
    }

    /* What the callee would hear: the verb rendered by the API (8 kHz WAV),
     * played from a blob URL (the page's policy allows media from blob:). */
    async function preview(where, btn) {
      // The verb as the text is now (the list is redrawn a moment after typing).
      let v = null;
      try {
        for (const [path, verbs] of lists(JSON.parse(text.value))) {
          verbs.forEach((x, i) => { if (`${path}[${i}]` === where) v = x; });
        }
      } catch (e) { v = null; }
      listPreviews();
      if (!v || (v.verb !== 'say' && v.verb !== 'play')) {
        message('', ['The document changed: ' + where + ' is no longer a say or play verb.']);
        return;
      }
      const body = { verb: v.verb };
      for (const k of ['text', 'voice', 'rate', 'url']) if (v[k] !== undefined) body[k] = v[k];
      btn.disabled = true;
      message('Rendering ' + where + '…');
      try {
        const resp = await fetch('/api/v1/app:preview', {
          method: 'POST', body: JSON.stringify(body), cache: 'no-store', credentials: 'omit',
          headers: { Authorization: 'Bearer ' + apiKey(), 'Content-Type': 'application/json',
            Accept: 'audio/wav, application/problem+json' },
        });
        if (resp.status === 401) { signOut('Your API key was refused; sign in again.'); return; }
        if (!resp.ok) {
          let problem = null;
          try { problem = JSON.parse(await resp.text()); } catch (e) { problem = null; }
          throw new ApiError(resp.status, problem);
        }
        const blob = await resp.blob();
        if (audioUrl) URL.revokeObjectURL(audioUrl);
        audioUrl = URL.createObjectURL(blob);
        audio.src = audioUrl;
        audio.hidden = false;
        message('Playing ' + where + ' as the callee would hear it.');
        // A browser that refuses to play unasked still shows the controls.
        await audio.play().catch(() => {});
      } catch (e) {
        message('', ['Preview of ' + where + ' failed' + (e.status ? ' (HTTP ' + e.status + ')' : '') + ':'].concat(problemLines(e)));
      } finally {
        btn.disabled = false;
      }
    }

    show(dep.app || null);
    return el('details', { id: 'app-editor', class: 'panel', open: !!dep.app },
      el('summary', null, el('strong', { text: 'Application' }), ' ', summary),
      el('p', { class: 'hint', id: 'app-hint' },
        'The call-control document every answered call of this deployment runs (',
        el('span', { class: 'mono', text: '{"verbs": [...], "machine": [...]}' }),
        '), unless the call brings its own or start_url answers one. Text fields are templates over the call parameters: ',
        el('span', { class: 'mono', text: '{{name}}' }), '.'),
      el('label', { for: 'app-json', text: 'Document (JSON)' }), text,
      errors, status,
      el('div', { class: 'actions' }, save, clearBtn, example),
      el('h3', { text: 'Preview' }), previews, audio);
  }

  /* The call page's account of what one attempt's application did: the
   * verbs in order, the digits gathered, the first-audio gap; null when it
   * ran none. */
  function attemptVerbs(a) {
    const verbs = Array.isArray(a.verbs) ? a.verbs : [];
    const has = (k) => a[k] !== null && a[k] !== undefined && a[k] !== '';
    if (!verbs.length && !has('app_error') && !has('digits') && !has('first_audio_ms')) return null;
    const facts = [];
    if (has('digits')) facts.push(['Digits gathered', el('span', { class: 'mono digits', text: a.digits })]);
    if (has('greeting_end_ms')) facts.push(['Greeting ended', fmtMs(a.greeting_end_ms) + ' after the answer']);
    if (has('first_audio_ms')) facts.push(['First audio', fmtMs(a.first_audio_ms) + ' after the answer']);
    if (has('first_audio_gap_ms')) facts.push(['First-audio gap', fmtMs(a.first_audio_gap_ms) + ' after the greeting ended']);
    if (has('app_error')) facts.push(['Application error', el('span', { class: 'error', text: a.app_error })]);
    return el('section', { class: 'attempt-app', id: 'app-attempt-' + a.attempt, 'aria-label': 'Application of attempt ' + a.attempt },
      el('h3', { text: 'Attempt ' + a.attempt }),
      el('dl', { class: 'kv' }, facts.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', null, v)])),
      verbs.length
        ? el('div', { class: 'table-wrap' }, el('table', { id: 'verbs-' + a.attempt, class: 'verbs' },
          el('thead', null, el('tr', null, el('th', { class: 'num', text: '#' }), el('th', { text: 'Verb' }),
            el('th', { class: 'num', text: 'Start' }), el('th', { class: 'num', text: 'Duration' }),
            el('th', { text: 'Outcome' }), el('th', { text: 'Digits' }), el('th', { text: 'Error / detail' }))),
          el('tbody', null, verbs.map((v, i) => el('tr', null,
            el('td', { class: 'num', text: i + 1 }), el('td', { class: 'verb', text: v.verb || '—' }),
            el('td', { class: 'num', text: fmtMs(v.started_ms) }), el('td', { class: 'num', text: fmtMs(v.duration_ms) }),
            el('td', { class: 'outcome', text: v.outcome || '—' }),
            el('td', { class: 'mono digits', text: v.digits || '—' }),
            el('td', null, v.error ? el('span', { class: 'error', text: v.error }) : null,
              v.error && v.detail ? ' · ' : null, v.detail ? String(v.detail) : null,
              !v.error && !v.detail ? '—' : null))))))
        : el('p', { class: 'muted', text: 'No verb ran.' }));
  }

  /* The call page's "Application" section: the document the call ran with
   * (its own or its deployment's, as the API reports it) and each
   * attempt's verbs; null when there is nothing to show. */
  function callSection(c) {
    const parts = (c.attempts || []).map(attemptVerbs).filter(Boolean);
    if (!parts.length && !c.app) return null;
    return el('section', { id: 'call-app', 'aria-labelledby': 'call-app-title' },
      el('h2', { id: 'call-app-title', text: 'Application' }),
      c.app ? el('details', { class: 'panel' }, el('summary', { text: 'Document (' + describe(c.app) + ')' }),
        el('pre', { class: 'mono', id: 'call-app-doc', text: JSON.stringify(c.app, null, 2) })) : null,
      parts.length ? parts : el('p', { class: 'muted', text: 'No attempt has run the document yet.' }));
  }

  return { editor, callSection };
}
