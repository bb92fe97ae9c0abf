// Neuron view (after bertviz): for one layer, head and query token, the query vector q, every key vector
// k_j, their elementwise product q*k_j, the score q.k_j / sqrt(d_head) and its softmax over keys j <= i,
// next to the captured attention weight. Needs queries/keys (ViewAttention::queries/keys); they are
// stored as int8 with one scale per head, so scores are close to, not bit-equal with, the model's.
'use strict';

Lens.neuronView = {
  meta: null,
  tokens: [],
  kMaxRows: 256,

  init(meta, run) {
    this.meta = meta;
    this.tokens = [];
    for (let i = 0; i < meta.seq_len; i++) {
      const t = run.tokens && run.tokens[i];
      this.tokens.push(t ? Lens.tokenText(t.text) : `#${i}`);
    }
    if (!meta.has_qk) {
      Lens.el('neuron-area').innerHTML = '<p class="hint">Queries and keys were not captured for this run.</p>';
      return;
    }
    Lens.el('neuron-layer').innerHTML = meta.layers.map((l) => `<option value="${l}">${l}</option>`).join('');
    Lens.el('neuron-head').innerHTML = [...Array(meta.n_head).keys()].map((h) => `<option>${h}</option>`).join('');
    const q = Lens.el('neuron-query');
    q.max = String(meta.seq_len - 1);
    q.value = String(Math.min(meta.seq_len - 1, 5));
    for (const id of ['neuron-layer', 'neuron-head', 'neuron-query']) Lens.el(id).addEventListener('input', () => this.render());
  },

  // Returns a Promise that resolves once the view is drawn.
  render() {
    const meta = this.meta;
    if (!meta.has_qk) return Promise.resolve();
    const layer = +Lens.el('neuron-layer').value, head = +Lens.el('neuron-head').value;
    const i = +Lens.el('neuron-query').value;
    Lens.el('neuron-query-label').textContent = `${i} ${JSON.stringify(this.tokens[i])}`;
    Lens.el('neuron-status').textContent = `loading layer ${layer}\u2026`;
    return Lens.attn.load(layer).then((d) => {
      if (+Lens.el('neuron-layer').value !== layer) return;
      this.draw(d, head, i);
    }, (err) => { Lens.el('neuron-status').textContent = String(err.message || err); });
  },

  draw(d, head, i) {
    const T = this.meta.seq_len, D = this.meta.d_head;
    const vec = (arr, scale, t) => {
      const out = new Float32Array(D), off = (head * T + t) * D;
      for (let x = 0; x < D; x++) out[x] = arr[off + x] * scale;
      return out;
    };
    const q = vec(d.q, d.q_scale[head], i);
    const keys = [], prods = [], scores = [];
    let maxAbs = 1e-12, maxProd = 1e-12, maxScore = -Infinity;
    for (let j = 0; j <= i; j++) {
      const k = vec(d.k, d.k_scale[head], j), p = new Float32Array(D);
      let dot = 0;
      for (let x = 0; x < D; x++) { p[x] = q[x] * k[x]; dot += p[x]; maxAbs = Math.max(maxAbs, Math.abs(k[x])); }
      for (let x = 0; x < D; x++) maxProd = Math.max(maxProd, Math.abs(p[x]));
      keys.push(k); prods.push(p);
      scores.push(dot / Math.sqrt(D));
      maxScore = Math.max(maxScore, scores[j]);
    }
    for (let x = 0; x < D; x++) maxAbs = Math.max(maxAbs, Math.abs(q[x]));
    let z = 0;
    const soft = scores.map((s) => { const e = Math.exp(s - maxScore); z += e; return e; }).map((e) => e / z);

    // Rows: all keys j <= i, or the kMaxRows with the largest softmax weight (in position order).
    let rows = [...Array(i + 1).keys()];
    if (rows.length > this.kMaxRows) {
      rows = rows.sort((a, b) => soft[b] - soft[a]).slice(0, this.kMaxRows).sort((a, b) => a - b);
    }
    const strip = (v, max) => {
      const c = document.createElement('canvas');
      Lens.paintCanvas(c, 1, D, (r, x) => Lens.diverging(v[x] / max));
      c.style.width = `${Math.max(64, 4 * D)}px`;
      return c;
    };
    const area = Lens.el('neuron-area');
    area.innerHTML = '';
    const head1 = document.createElement('div');
    head1.className = 'neuron-query';
    head1.innerHTML = `<b>query</b> ${i} <span class="mono">${Lens.escape(JSON.stringify(this.tokens[i]))}</span> ` +
                      `(layer ${d.layer}, head ${head}, d_head ${D}) `;
    head1.appendChild(strip(q, maxAbs));
    area.appendChild(head1);
    if (rows.length < i + 1) {
      const note = document.createElement('p');
      note.className = 'hint';
      note.textContent = `Showing the ${rows.length} of ${i + 1} keys with the largest softmax weight.`;
      area.appendChild(note);
    }
    const table = document.createElement('table');
    table.className = 'neuron-table';
    table.innerHTML = '<thead><tr><th>pos</th><th>key token</th><th>k</th><th>q \u00d7 k</th>' +
                      '<th>q\u00b7k/\u221ad</th><th>softmax</th><th>captured</th></tr></thead>';
    const body = document.createElement('tbody');
    for (const j of rows) {
      const tr = document.createElement('tr');
      tr.dataset.key = String(j);
      tr.innerHTML = `<td>${j}</td><td class="tok mono">${Lens.escape(this.tokens[j])}</td><td></td><td></td>` +
                     `<td>${Lens.fmt(scores[j])}</td>` +
                     `<td class="soft"><span class="w" style="width:${Math.round(50 * soft[j])}px"></span> ${Lens.fmt(soft[j])}</td>` +
                     `<td class="captured">${Lens.fmt(Lens.attn.weight(d, head, i, j))}</td>`;
      tr.cells[2].appendChild(strip(keys[j], maxAbs));
      tr.cells[3].appendChild(strip(prods[j], maxProd));
      body.appendChild(tr);
    }
    table.appendChild(body);
    area.appendChild(table);
    Lens.el('neuron-status').textContent = '';
  },
};
