// Attention-sink table: run.attention.sinks as a sortable table (layer, head, bos_mass, prev_mass,
// entropy, sink). Needs no attention patterns, only the run document's summary.
'use strict';

Lens.sinksView = {
  rows: [],
  sortKey: 'layer',
  sortDesc: false,
  columns: ['layer', 'head', 'bos_mass', 'prev_mass', 'entropy', 'sink'],

  init(run) {
    this.rows = (run.attention && run.attention.sinks) || [];
    Lens.el('sinks-only').addEventListener('change', () => this.render());
    this.render();
  },

  render() {
    const area = Lens.el('sinks-area');
    if (!this.rows.length) {
      area.innerHTML = '<p class="hint">No attention-sink report in this run (lens run --attention).</p>';
      return;
    }
    const only = Lens.el('sinks-only').checked;
    const key = this.sortKey, sign = this.sortDesc ? -1 : 1;
    const rows = this.rows.filter((r) => !only || r.sink)
      .sort((a, b) => sign * ((+a[key] || 0) - (+b[key] || 0)) || a.layer - b.layer || a.head - b.head);
    const arrow = (c) => (c === key ? (this.sortDesc ? ' \u25bc' : ' \u25b2') : '');
    let html = '<table class="sink-table"><thead><tr>' +
               this.columns.map((c) => `<th data-key="${c}">${c}${arrow(c)}</th>`).join('') + '</tr></thead><tbody>';
    for (const r of rows) {
      html += `<tr class="${r.sink ? 'sink' : ''}"><td>${r.layer}</td><td>${r.head}</td>` +
              `<td>${Lens.fmt(r.bos_mass)}</td><td>${Lens.fmt(r.prev_mass)}</td><td>${Lens.fmt(r.entropy)}</td>` +
              `<td>${r.sink ? 'sink' : ''}</td></tr>`;
    }
    area.innerHTML = html + '</tbody></table>';
    area.querySelector('thead').addEventListener('click', (ev) => {
      const k = ev.target.dataset.key;
      if (!k) return;
      this.sortDesc = k === this.sortKey ? !this.sortDesc : k !== 'layer' && k !== 'head';
      this.sortKey = k;
      this.render();
    });
  },
};
