// Head view (after bertviz): tokens on the left attend to tokens on the right; one line per weight at or
// above "min weight", one colour per head, opacity by weight. Hovering a token keeps only its lines.
// Lines are bucketed by opacity into a few canvas paths, so a 1000-token layer draws in milliseconds.
'use strict';

Lens.headView = {
  meta: null,
  tokens: [],
  layer: null,
  heads: new Set(),
  data: null,     // decoded layer (Lens.attn.load)
  hover: null,    // {side: 'left' | 'right', index}
  rowH: 16,
  width: 260,

  init(meta, run) {
    this.meta = meta;
    const T = meta.seq_len;
    this.tokens = [];
    for (let i = 0; i < T; i++) {
      const t = run.tokens && run.tokens[i];
      this.tokens.push(t ? Lens.tokenText(t.text) : `#${i}`);
    }
    this.rowH = Math.max(4, Math.min(16, Math.floor(32000 / T)));  // canvases max out near 32k px

    const sel = Lens.el('head-layer');
    sel.innerHTML = meta.layers.map((l) => `<option value="${l}">${l}</option>`).join('');
    sel.addEventListener('change', () => this.show(+sel.value));
    // All heads at once is readable for short prompts only; long ones start with head 0.
    const startAll = T <= 128;
    const heads = [];
    for (let h = 0; h < meta.n_head; h++) {
      const on = startAll || h === 0;
      if (on) this.heads.add(h);
      heads.push(`<label title="head ${h}"><input type="checkbox" data-head="${h}"${on ? ' checked' : ''}>` +
                 `<i style="background:${Lens.headColour(h, meta.n_head)}"></i>${h}</label>`);
    }
    Lens.el('head-heads').innerHTML = heads.join('');
    Lens.el('head-heads').addEventListener('change', (ev) => {
      const h = +ev.target.dataset.head;
      if (ev.target.checked) this.heads.add(h); else this.heads.delete(h);
      this.draw();
    });
    Lens.el('head-all').addEventListener('click', () => this.setHeads([...Array(meta.n_head).keys()]));
    Lens.el('head-none').addEventListener('click', () => this.setHeads([]));
    Lens.el('head-min').addEventListener('input', () => this.draw());

    // Columns of tokens around the canvas.
    const col = (side) => {
      const div = document.createElement('div');
      div.className = `head-col ${side}`;
      div.innerHTML = this.tokens.map((t, i) => `<div class="tok" data-i="${i}" style="height:${this.rowH}px;` +
        `line-height:${this.rowH}px;font-size:${Math.min(11, this.rowH - 2)}px">${Lens.escape(t)}</div>`).join('');
      div.addEventListener('mouseover', (ev) => {
        const tok = ev.target.closest('.tok');
        if (tok) this.setHover({side, index: +tok.dataset.i});
      });
      return div;
    };
    const area = Lens.el('head-area');
    this.left = col('left');
    this.right = col('right');
    this.canvas = document.createElement('canvas');
    this.canvas.width = this.width;
    this.canvas.height = T * this.rowH;
    area.append(this.left, this.canvas, this.right);
    area.addEventListener('mouseleave', () => this.setHover(null));
    this.layer = meta.layers[0];
  },

  setHeads(list) {
    this.heads = new Set(list);
    for (const box of Lens.el('head-heads').querySelectorAll('input')) box.checked = this.heads.has(+box.dataset.head);
    this.draw();
  },

  setHover(hover) {
    for (const el of document.querySelectorAll('#head-area .tok.active')) el.classList.remove('active');
    this.hover = hover;
    if (hover) (hover.side === 'left' ? this.left : this.right).children[hover.index].classList.add('active');
    this.draw();
  },

  // Shows `layer` (block index); `heads` optionally replaces the head selection. Returns a Promise.
  show(layer, heads) {
    this.layer = layer;
    Lens.el('head-layer').value = String(layer);
    if (heads) this.setHeads(heads);
    const status = Lens.el('head-status');
    status.textContent = `loading layer ${layer}\u2026`;
    return Lens.attn.load(layer).then((d) => {
      if (this.layer !== layer) return;  // the user moved on meanwhile
      this.data = d;
      this.draw();
    }, (err) => { status.textContent = String(err.message || err); });
  },

  draw() {
    const d = this.data;
    if (!d || d.layer !== this.layer) return;
    const T = this.meta.seq_len, tri = Lens.attn.tri(T), P = d.patterns, rowH = this.rowH, W = this.width;
    const ctx = this.canvas.getContext('2d');
    ctx.clearRect(0, 0, W, this.canvas.height);
    const minW = Math.max(0, +Lens.el('head-min').value || 0);
    const qMin = Math.max(1, Math.ceil(255 * Math.sqrt(minW)));  // compare bytes, not floats
    const kLevels = 8;
    const y = (i) => i * rowH + rowH / 2;
    const hv = this.hover;
    let lines = 0;
    ctx.lineWidth = 1.5;
    for (const h of this.heads) {
      const paths = Array.from({length: kLevels}, () => new Path2D());
      const base = h * tri;
      const add = (i, j, q) => {
        const level = Math.min(kLevels - 1, Math.floor(Lens.DEQ[q] * kLevels));
        paths[level].moveTo(0, y(i));
        paths[level].lineTo(W, y(j));
        lines++;
      };
      if (hv && hv.side === 'left') {            // one query: its row
        const i = hv.index, off = base + (i * (i + 1)) / 2;
        for (let j = 0; j <= i; j++) if (P[off + j] >= qMin) add(i, j, P[off + j]);
      } else if (hv && hv.side === 'right') {    // one key: its column
        const j = hv.index;
        for (let i = j; i < T; i++) {
          const q = P[base + (i * (i + 1)) / 2 + j];
          if (q >= qMin) add(i, j, q);
        }
      } else {
        for (let i = 0, off = base; i < T; off += ++i) {
          for (let j = 0; j <= i; j++) if (P[off + j] >= qMin) add(i, j, P[off + j]);
        }
      }
      ctx.strokeStyle = Lens.headColour(h, this.meta.n_head);
      for (let level = 0; level < kLevels; level++) {
        ctx.globalAlpha = Math.min(1, (level + 1) / kLevels);
        ctx.stroke(paths[level]);
      }
    }
    ctx.globalAlpha = 1;
    this.canvas.dataset.lines = String(lines);
    Lens.el('head-status').textContent = `layer ${this.layer}: ${this.heads.size} heads, ${lines} lines`;
  },
};
