// Logit-lens table: layers (rows) x positions (columns), each cell the top-1 token coloured by its
// probability or by the entropy; hover shows top-k, entropy, KL. A layer slider dims (or hides) the
// layers above it and shows that layer's predictions under the prompt. Several lenses (run.lenses,
// e.g. logit and tuned) are shown side by side and share the slider.
// Columns come in blocks of kBlock positions, built when scrolled near (IntersectionObserver): laying
// out all 33 x 1000 cells of a long prompt up front costs about a second.
'use strict';

Lens.lensView = {
  kBlock: 50,
  kCellW: 64,      // px; fixed column width (table-layout: fixed)
  kRowH: 19,       // px; fixed row height, so the row-header table and the blocks line up
  run: null,
  lenses: [],      // [{name, layers, cols: [pos], grid: [row][col] -> position record, heads, blocks}]
  maxEntropy: 1,
  row: 0,          // slider position (row index)

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
    this.legend();
    this.buildStrip();
    this.setLayer(nRows - 1);
  },

  tokText(pos) {
    const tokens = this.run.tokens || [];
    return pos >= 0 && pos < tokens.length ? Lens.tokenText(tokens[pos].text) : '';
  },

  // A panel: title, a sticky row-header table, and one placeholder per block of columns.
  buildPanel(lens, lensIndex) {
    const posSet = new Set();
    for (const layer of lens.layers) for (const p of layer.positions) posSet.add(p.pos);
    lens.cols = [...posSet].sort((a, b) => a - b);
    const colOf = new Map(lens.cols.map((pos, c) => [pos, c]));
    lens.grid = lens.layers.map((layer) => {
      const row = new Array(lens.cols.length);
      for (const p of layer.positions) row[colOf.get(p.pos)] = p;
      return row;
    });

    const height = this.kRowH * (lens.grid.length + 2);
    const parts = ['<table class="lens-table heads"><thead><tr><th>layer</th></tr></thead><tbody>'];
    for (const layer of lens.layers) parts.push(`<tr><th title="${Lens.escape(layer.name || '')}">${layer.layer}</th></tr>`);
    parts.push('</tbody><tfoot><tr><th title="the actual next token">next</th></tr></tfoot></table>');
    lens.blocks = [];
    for (let c0 = 0; c0 < lens.cols.length; c0 += this.kBlock) {
      const c1 = Math.min(lens.cols.length, c0 + this.kBlock);
      lens.blocks.push({c0, c1, rows: null});
      parts.push(`<div class="lens-block" data-block="${lens.blocks.length - 1}" ` +
                 `style="width:${this.kCellW * (c1 - c0)}px;height:${height}px"></div>`);
    }
    const panel = document.createElement('div');
    panel.className = 'lens-panel';
    panel.innerHTML = `<h2>${Lens.escape(lens.name)} lens</h2><div class="lens-scroll">` +
                      `<div class="lens-blocks" data-lens="${lensIndex}">${parts.join('')}</div></div>`;
    lens.heads = [...panel.querySelector('table.heads').tBodies[0].rows];

    const scroller = panel.querySelector('.lens-scroll');
    const observer = new IntersectionObserver((entries) => {
      for (const e of entries) {
        if (!e.isIntersecting) continue;
        observer.unobserve(e.target);
        this.buildBlock(lens, +e.target.dataset.block, e.target);
      }
    }, {root: scroller, rootMargin: '0px 1500px'});
    for (const div of panel.querySelectorAll('.lens-block')) observer.observe(div);
    // Build the first blocks now, so the page shows a table on its first paint.
    panel.querySelectorAll('.lens-block').forEach((div, b) => {
      if (b < 2) {
        observer.unobserve(div);
        this.buildBlock(lens, b, div);
      }
    });

    const blocks = panel.querySelector('.lens-blocks');
    blocks.addEventListener('mouseover', (ev) => {
      const td = ev.target.closest('td');
      if (td) Lens.tooltip.show(this.tooltipHtml(lens, +td.dataset.r, +td.dataset.c), ev);
      else Lens.tooltip.hide();
    });
    blocks.addEventListener('mouseleave', () => Lens.tooltip.hide());
    return panel;
  },

  buildBlock(lens, b, div) {
    const block = lens.blocks[b];
    if (block.rows) return;
    const tokens = this.run.tokens || [];
    const byEntropy = Lens.el('lens-colour').value === 'entropy';
    const parts = [`<table class="lens-table" style="width:${this.kCellW * (block.c1 - block.c0)}px">` +
                   `<colgroup><col span="${block.c1 - block.c0}"></colgroup><thead><tr>`];
    for (let c = block.c0; c < block.c1; c++) {
      parts.push(`<th title="pos ${lens.cols[c]}">${Lens.escape(this.tokText(lens.cols[c]))}</th>`);
    }
    parts.push('</tr></thead><tbody>');
    lens.grid.forEach((row, r) => {
      parts.push('<tr>');
      for (let c = block.c0; c < block.c1; c++) {
        const p = row[c];
        const top = p && p.top && p.top[0];
        const next = tokens[lens.cols[c] + 1];
        const hit = top && next && top.id === next.id ? ' class="hit"' : '';
        const style = p ? ` style="${this.cellStyle(p, byEntropy)}"` : '';
        parts.push(`<td data-r="${r}" data-c="${c}"${hit}${style}>${top ? Lens.escape(Lens.tokenText(top.token)) : ''}</td>`);
      }
      parts.push('</tr>');
    });
    parts.push('</tbody><tfoot><tr>');
    for (let c = block.c0; c < block.c1; c++) parts.push(`<th>${Lens.escape(this.tokText(lens.cols[c] + 1))}</th>`);
    parts.push('</tr></tfoot></table>');
    div.innerHTML = parts.join('');
    div.style.height = '';
    block.rows = [...div.querySelector('tbody').rows];
    block.rows.forEach((tr, r) => this.rowState(tr, r));
  },

  tooltipHtml(lens, r, c) {
    const layer = lens.layers[r], p = lens.grid[r][c], pos = lens.cols[c];
    let html = `<div><b>${Lens.escape(lens.name)} lens, layer ${layer.layer}</b> ` +
               `<span class="hint">${Lens.escape(layer.name || '')}</span></div>` +
               `<div>pos ${pos}, input <span class="mono">${Lens.escape(JSON.stringify(this.tokText(pos)))}</span></div>`;
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

  // Colour of a cell: probability of the top-1 (white -> blue) or entropy (confident = dark orange).
  cellValue(p, byEntropy) {
    return byEntropy ? 1 - (p.entropy || 0) / this.maxEntropy : (p.top && p.top[0] ? p.top[0].prob : 0);
  },

  cellStyle(p, byEntropy) {
    const t = this.cellValue(p, byEntropy);
    return `background:${Lens.rgb(byEntropy ? Lens.orange(t) : Lens.blue(t))};color:${t > 0.55 ? '#fff' : '#000'}`;
  },

  recolour() {
    const byEntropy = Lens.el('lens-colour').value === 'entropy';
    for (const lens of this.lenses) {
      for (const block of lens.blocks) {
        if (!block.rows) continue;  // built later, in the current colours
        block.rows.forEach((tr, r) => {
          for (let c = block.c0; c < block.c1; c++) {
            const p = lens.grid[r][c];
            if (p) tr.cells[c - block.c0].style.cssText = this.cellStyle(p, byEntropy);
          }
        });
      }
    }
    this.legend();
  },

  legend() {
    const byEntropy = Lens.el('lens-colour').value === 'entropy';
    const legend = byEntropy ? [Lens.orange(0), Lens.orange(1), `${Lens.fmt(this.maxEntropy, 1)} nats`, '0 nats']
                             : [Lens.blue(0), Lens.blue(1), 'p=0', 'p=1'];
    Lens.el('lens-legend').innerHTML = `${legend[2]} <i style="background:linear-gradient(90deg,` +
                                       `${Lens.rgb(legend[0])},${Lens.rgb(legend[1])})"></i> ${legend[3]}`;
  },

  // The prompt with one layer's top-1 under each token (first lens); setLayer fills in the predictions.
  buildStrip() {
    const lens = this.lenses[0];
    Lens.el('lens-strip').innerHTML = lens.cols.map((pos) =>
      `<div class="pair"><span class="in">${Lens.escape(this.tokText(pos))}</span><span class="out"></span></div>`).join('');
    this.stripOut = [...Lens.el('lens-strip').querySelectorAll('.out')];
  },

  rowState(tr, r) {
    const hide = Lens.el('lens-hide-above').checked;
    tr.classList.toggle('dim', r > this.row && !hide);
    tr.classList.toggle('hidden', r > this.row && hide);
    tr.classList.toggle('current', r === this.row);
  },

  // Slider: rows above `row` are dimmed (or hidden); `row` is outlined and shown over the prompt.
  setLayer(row) {
    this.row = row;
    for (const lens of this.lenses) {
      lens.heads.forEach((tr, r) => this.rowState(tr, r));
      for (const block of lens.blocks) if (block.rows) block.rows.forEach((tr, r) => this.rowState(tr, r));
    }
    const lens = this.lenses[0];
    const layer = lens.layers[row];
    Lens.el('lens-layer-label').textContent = layer ? `${layer.layer} (${layer.name || ''})` : '';
    if (!layer) return;
    lens.cols.forEach((pos, c) => {
      const p = lens.grid[row][c];
      const top = p && p.top && p.top[0];
      const span = this.stripOut[c];
      span.textContent = top ? Lens.tokenText(top.token) : '';
      span.style.cssText = p ? this.cellStyle(p, false) : '';
    });
  },
};
