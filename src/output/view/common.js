// Shared helpers of the lens page: data access, base64 decoding, colour scales, tooltip, and the attention
// store that receives layers from inline <script> elements or lazily loaded sibling files
// (<stem>_files/attn_<layer>.js, which call lensRegisterAttn). No network: script tags work under file://.
'use strict';

const Lens = {};

Lens.el = (id) => document.getElementById(id);

Lens.escape = (s) => String(s).replace(/[&<>"']/g,
  (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c]));

// Token text for display: make whitespace visible without changing width much.
Lens.tokenText = (s) => String(s == null ? '' : s).replace(/\n/g, '\u21b5').replace(/\t/g, '\u2192');

Lens.fmt = (x, digits = 3) => (x == null || Number.isNaN(x) ? '\u2013' : Number(x).toFixed(digits));

Lens.decodeBase64 = (s) => {
  if (Uint8Array.fromBase64) return Uint8Array.fromBase64(s);
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
};

// Quantised probabilities are round(255 * sqrt(p)); this table maps a byte back to p.
Lens.DEQ = new Float32Array(256).map((_, q) => (q / 255) * (q / 255));

// Colour scales. t in [0, 1].
Lens.mix = (a, b, t) => a.map((x, i) => Math.round(x + (b[i] - x) * t));
Lens.blue = (t) => Lens.mix([255, 255, 255], [8, 48, 107], Math.min(1, Math.max(0, t)));
Lens.orange = (t) => Lens.mix([255, 255, 255], [127, 39, 4], Math.min(1, Math.max(0, t)));
Lens.diverging = (t) => (t < 0 ? Lens.mix([255, 255, 255], [33, 102, 172], Math.min(1, -t))
                               : Lens.mix([255, 255, 255], [178, 24, 43], Math.min(1, t)));
Lens.rgb = (c) => `rgb(${c[0]},${c[1]},${c[2]})`;
Lens.headColour = (h, n) => `hsl(${Math.round((360 * h) / Math.max(1, n))},70%,45%)`;

// Tooltip: show(html, mouseEvent) / hide().
Lens.tooltip = {
  show(html, ev) {
    const t = Lens.el('tooltip');
    t.innerHTML = html;
    t.hidden = false;
    const pad = 14, w = t.offsetWidth, h = t.offsetHeight;
    let x = ev.clientX + pad, y = ev.clientY + pad;
    if (x + w > window.innerWidth) x = Math.max(0, ev.clientX - w - pad);
    if (y + h > window.innerHeight) y = Math.max(0, ev.clientY - h - pad);
    t.style.left = x + 'px';
    t.style.top = y + 'px';
  },
  hide() { Lens.el('tooltip').hidden = true; },
};

// Paints a (rows x cols) grid of RGB colours into a canvas, one pixel per cell (CSS scales it up).
Lens.paintCanvas = (canvas, rows, cols, colourAt) => {
  canvas.width = cols;
  canvas.height = rows;
  const ctx = canvas.getContext('2d');
  const img = ctx.createImageData(cols, rows);
  for (let r = 0, o = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++, o += 4) {
      const col = colourAt(r, c);
      img.data[o] = col[0]; img.data[o + 1] = col[1]; img.data[o + 2] = col[2]; img.data[o + 3] = 255;
    }
  }
  ctx.putImageData(img, 0, 0);
};

// ---- Attention store -------------------------------------------------------------------------------
// meta (from #lens-attn): n_layer, n_head, seq_len, d_head, layers, has_qk, thumb_size, thumbs (base64),
// full ("inline" | "files"), files_dir. A registered layer: {layer, patterns, q?, k?, q_scale?, k_scale?}.
Lens.attn = {
  meta: null,
  raw: {},        // block index -> registered object (base64 strings, decoded on first use)
  decoded: [],    // small LRU of decoded layers: [{layer, patterns, q, k, q_scale, k_scale}]
  loading: {},    // block index -> Promise

  tri(T) { return (T * (T + 1)) / 2; },

  // Promise of the decoded layer; loads <files_dir>/attn_<layer>.js on first use when not inline.
  load(layer) {
    const cached = this.decoded.find((d) => d.layer === layer);
    if (cached) return Promise.resolve(cached);
    if (!this.raw[layer] && !this.loading[layer]) {
      const m = this.meta;
      if (m.full !== 'files') return Promise.reject(new Error(`layer ${layer} was not captured`));
      this.loading[layer] = new Promise((resolve, reject) => {
        const s = document.createElement('script');
        s.src = `${encodeURIComponent(m.files_dir)}/attn_${layer}.js`;
        s.onload = () => (this.raw[layer] ? resolve() : reject(new Error(`${s.src} registered nothing`)));
        s.onerror = () => reject(new Error(`cannot load ${s.src} (keep the _files folder next to the page)`));
        document.head.appendChild(s);
      });
    }
    return Promise.resolve(this.loading[layer]).then(() => this.decode(layer));
  },

  decode(layer) {
    const cached = this.decoded.find((d) => d.layer === layer);
    if (cached) return cached;
    const r = this.raw[layer];
    const d = {layer, patterns: Lens.decodeBase64(r.patterns)};
    if (r.q) {
      d.q = new Int8Array(Lens.decodeBase64(r.q).buffer);
      d.k = new Int8Array(Lens.decodeBase64(r.k).buffer);
      d.q_scale = r.q_scale;
      d.k_scale = r.k_scale;
    }
    this.decoded.unshift(d);
    if (this.decoded.length > 4) this.decoded.pop();  // a 1000-token, 32-head layer is 16 MB
    if (this.meta.full === 'files') {  // the decoded copy is the one kept; reload the file if evicted
      delete this.raw[layer];
      delete this.loading[layer];
    }
    return d;
  },

  // Attention weight of (head, query i, key j) in a decoded layer; 0 above the diagonal.
  weight(d, head, i, j) {
    if (j > i) return 0;
    return Lens.DEQ[d.patterns[head * this.tri(this.meta.seq_len) + (i * (i + 1)) / 2 + j]];
  },
};

// Called by inline attention scripts and by attn_<layer>.js files.
function lensRegisterAttn(obj) { Lens.attn.raw[obj.layer] = obj; }
