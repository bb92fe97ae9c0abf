// Logit-lens table: layers (rows) x positions (columns), each cell the top-1 token coloured by its
// probability or by the entropy; hover shows top-k, entropy, KL. A layer slider dims (or hides) the
// layers above it and shows that layer's predictions under the prompt. Several lenses (run.lenses,
// e.g. logit and tuned) are shown side by side and share the slider.
'use strict';

Lens.lensView = {
  run: null,
  lenses: [],      // [{name, layers, cols: [pos], rows: [tr], cells: [[td]]}]
  maxEntropy: 1,

  init(run) {
    this.run = run;
    const byName = run.lenses && typeof run.lenses === 'object' ? Object.entries(run.lenses)
                                                                 : [[run.lens || 'logit', run.layers || []]];
    this.lenses = byName.map(([name, layers]) => ({name, layers: layers || []}));
    const vocab = run.model && run.model.vocab_size;
    let maxSeen = 0;
    for (const lens of this.lenses)
      for (const layer of lens.layers) for (const p of layer.positions) maxSeen = Math.max(maxSeen, p.entropy || 0);
    this.maxEntropy = vocab > 1 ? Math.log(vocab) : Math.max(maxSeen, 1e-9);

    const host = Lens.el('lens-tables');
    host.innerHTML = '';
    this.lenses.forEach((lens, i) => host.appendChild(this.buildPanel(lens, i)));

    const nRows = Math.max(...this.lenses.map((l) => l.layers.length), 1);
    const slider = Lens.el('lens-layer');
    slider.max = String(nRows - 1);
    slider.value = String(nRows - 1);
    slider.addEventListener('input', () => this.setLayer(+slider.value));
    Lens.el('lens-hide-above').addEventListener('change', () => this.setLayer(+slider.value));
    Lens.el('lens-colour').addEventListener('change', () => this.recolour());
    this.recolour();
    this.setLayer(nRows - 1);
  },

  buildPanel(lens, lensIndex) {
    const tokens = this.run.tokens || [];
    const posSet = new Set();
    for (const layer of lens.layers) for (const p of layer.positions) posSet.add(p.pos);
    lens.cols = [...posSet].sort((a, b) => a - b);
    const colOf = new Map(lens.cols.map((pos, c) => [pos, c]));
    // lens.grid[row][col] = position record (or undefined).
    lens.grid = lens.layers.map((layer) => {
      const row = new Array(lens.cols.length);
      for (const p of layer.positions) row[colOf.get(p.pos)] = p;
      return row;
    });

    const tokText = (pos) => (pos >= 0 && pos < tokens.length ? Lens.tokenText(tokens[pos].text) : '');
    const parts = ['<thead><tr><th class="row-head">layer</th>'];
    for (const pos of lens.cols) parts.push(`<th title="pos ${pos}">${Lens.escape(tokText(pos))}</th>`);
    parts.push('</tr></thead><tbody>');
    lens.grid.forEach((row, r) => {
      const layer = lens.layers[r];
      parts.push(`<tr data-row="${r}"><th class="row-head" title="${Lens.escape(layer.name || '')}">${layer.layer}</th>`);
      for (let c = 0; c < row.length; c++) {
        const p = row[c];
        const top = p && p.top && p.top[0];
        const next = tokens[lens.cols[c] + 1];
        const hit = top && next && top.id === next.id ? ' class="hit"' : '';
        parts.push(`<td data-r="${r}" data-c="${c}"${hit}>${top ? Lens.escape(Lens.tokenText(top.token)) : ''}</td>`);
      }
      parts.push('</tr>');
    });
    parts.push('</tbody><tfoot><tr><th class="row-head" title="the actual next token">next</th>');
    for (const pos of lens.cols) parts.push(`<th>${Lens.escape(tokText(pos + 1))}</th>`);
    parts.push('</tr></tfoot>');

    const panel = document.createElement('div');
    panel.className = 'lens-panel';
    panel.innerHTML = `<h2>${Lens.escape(lens.name)} lens</h2><div class="lens-scroll">` +
                      `<table class="lens-table" data-lens="${lensIndex}">${parts.join('')}</table></div>`;
    const table = panel.querySelector('table');
    lens.rows = [...table.tBodies[0].rows];
    table.tBodies[0].addEventListener('mouseover', (ev) => {
      const td = ev.target.closest('td');
      if (td) Lens.tooltip.show(this.tooltipHtml(lens, +td.dataset.r, +td.dataset.c), ev);
    });
    table.tBodies[0].addEventListener('mouseleave', () => Lens.tooltip.hide());
    return panel;
  },

  tooltipHtml(lens, r, c) {
    const layer = lens.layers[r], p = lens.grid[r][c], pos = lens.cols[c];
    const tokens = this.run.tokens || [];
    const input = pos < tokens.length ? Lens.tokenText(tokens[pos].text) : '';
    let html = `<div><b>${Lens.escape(lens.name)} lens, layer ${layer.layer}</b> ` +
               `<span class="hint">${Lens.escape(layer.name || '')}</span></div>` +
               `<div>pos ${pos}, input <span class="mono">${Lens.escape(JSON.stringify(input))}</span></div>`;
    if (!p) return html + '<div class="meta">no data</div>';
    html += '<table class="topk">';
    for (const t of p.top || []) {
      html += `<tr><td class="mono">${Lens.escape(JSON.stringify(Lens.tokenText(t.token)))}</td>` +
              `<td>${Lens.fmt(t.prob)}</td><td><span class="bar" style="width:${Math.round(60 * t.prob)}px"></span></td></tr>`;
    }
    html += '</table>';
    html += `<div class="meta">entropy ${Lens.fmt(p.entropy)} nats, KL(final || layer) ${Lens.fmt(p.kl_to_final)} nats</div>`;
    if (p.final_top1) {
      html += `<div class="meta">final top-1 ${Lens.escape(JSON.stringify(Lens.tokenText(p.final_top1.token)))}: ` +
              `rank ${p.final_top1.rank}, p ${Lens.fmt(p.final_top1.prob)}</div>`;
    }
    for (const t of p.targets || []) {
      html += `<div class="meta">target ${Lens.escape(JSON.stringify(Lens.tokenText(t.token)))}: ` +
              `rank ${t.rank}, p ${Lens.fmt(t.prob, 4)}</div>`;
    }
    return html;
  },

  recolour() {
    const byEntropy = Lens.el('lens-colour').value === 'entropy';
    for (const lens of this.lenses) {
      lens.rows.forEach((tr, r) => {
        const cells = tr.cells;  // cells[0] is the row header
        for (let c = 0; c < lens.cols.length; c++) {
          const p = lens.grid[r][c];
          const td = cells[c + 1];
          if (!p) continue;
          // Entropy: low entropy (confident) is dark, like a high probability.
          const t = byEntropy ? 1 - (p.entropy || 0) / this.maxEntropy : (p.top && p.top[0] ? p.top[0].prob : 0);
          const col = byEntropy ? Lens.orange(t) : Lens.blue(t);
          td.style.background = Lens.rgb(col);
          td.style.color = t > 0.55 ? '#fff' : '#000';
        }
      });
    }
    const legend = byEntropy ? [Lens.orange(0), Lens.orange(1), `${Lens.fmt(this.maxEntropy, 1)} nats`, '0']
                             : [Lens.blue(0), Lens.blue(1), 'p=0', 'p=1'];
    Lens.el('lens-legend').innerHTML = `${legend[2]} <i style="background:linear-gradient(90deg,` +
                                       `${Lens.rgb(legend[0])},${Lens.rgb(legend[1])})"></i> ${legend[3]}`;
  },

  // Slider: rows above `row` are dimmed (or hidden); `row` is outlined and shown over the prompt.
  setLayer(row) {
    const hide = Lens.el('lens-hide-above').checked;
    for (const lens of this.lenses) {
      lens.rows.forEach((tr, r) => {
        tr.classList.toggle('dim', r > row && !hide);
        tr.classList.toggle('hidden', r > row && hide);
        tr.classList.toggle('current', r === row);
      });
    }
    const lens = this.lenses[0];
    const layer = lens.layers[row];
    Lens.el('lens-layer-label').textContent = layer ? `${layer.layer} (${layer.name || ''})` : '';
    const tokens = this.run.tokens || [];
    const parts = [];
    if (layer) {
      lens.cols.forEach((pos, c) => {
        const p = lens.grid[row][c];
        const top = p && p.top && p.top[0];
        const col = Lens.blue(top ? top.prob : 0);
        const input = pos < tokens.length ? tokens[pos].text : '';
        parts.push(`<div class="pair"><span class="in">${Lens.escape(Lens.tokenText(input))}</span>` +
                   `<span class="out" style="background:${Lens.rgb(col)};color:${top && top.prob > 0.55 ? '#fff' : '#000'}">` +
                   `${top ? Lens.escape(Lens.tokenText(top.token)) : ''}</span></div>`);
      });
    }
    Lens.el('lens-strip').innerHTML = parts.join('');
  },
};
