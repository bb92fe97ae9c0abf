// Entry point of the lens page: reads the embedded data, sets up the views and the tabs. Views that need
// attention are built on first display; full attention for a layer is loaded when a view asks for it.
'use strict';

Lens.views = {};

Lens.showView = (name) => {
  for (const b of document.querySelectorAll('#tabs button')) b.classList.toggle('active', b.dataset.view === name);
  for (const s of document.querySelectorAll('.view')) s.classList.toggle('active', s.id === `view-${name}`);
  Lens.tooltip.hide();
  const m = Lens.attn.meta;
  if (name === 'model' && m) Lens.modelView.build(m);
  if (name === 'head' && m && !Lens.headView.data) Lens.headView.show(Lens.headView.layer);
  if (name === 'neuron' && m && m.has_qk) Lens.neuronView.render();
};

document.addEventListener('DOMContentLoaded', () => {
  const t0 = performance.now();
  const timings = {};  // ms per start-up step, read by the browser test
  let last = t0;
  const step = (name) => { const now = performance.now(); timings[name] = Math.round(now - last); last = now; };
  const run = JSON.parse(Lens.el('lens-run').textContent);
  const meta = JSON.parse(Lens.el('lens-attn').textContent);
  Lens.run = run;
  Lens.attn.meta = meta;
  step('parse');

  const model = run.model || {};
  Lens.el('title').textContent = `lens view: ${model.name || 'model'} (${run.lens || 'logit'} lens)`;
  document.title = `lens: ${model.name || ''}`;
  const tokens = run.tokens || [];
  Lens.el('subtitle').textContent = `${model.architecture || ''} ${model.n_layer || '?'} layers, ` +
    `${tokens.length} tokens` + (run.prompt != null ? `: ${JSON.stringify(run.prompt)}` : '');

  Lens.lensView.init(run);
  step('lens');
  Lens.sinksView.init(run);
  step('sinks');
  if (meta) {
    Lens.headView.init(meta, run);
    Lens.neuronView.init(meta, run);
    step('attention');
  } else {
    for (const v of ['head', 'model', 'neuron']) {
      const b = document.querySelector(`#tabs button[data-view="${v}"]`);
      b.disabled = true;
      b.title = 'no attention captured (lens run --attention)';
    }
  }
  const sinks = run.attention && run.attention.sinks;
  document.querySelector('#tabs button[data-view="sinks"]').disabled = !(sinks && sinks.length);
  Lens.el('tabs').addEventListener('click', (ev) => {
    const b = ev.target.closest('button');
    if (b && !b.disabled) Lens.showView(b.dataset.view);
  });
  // Ready after the first frame is painted; the browser test waits for this and reads the timing.
  requestAnimationFrame(() => setTimeout(() => {
    step('paint');
    window.lensTimings = timings;
    window.lensInitMs = Math.round(performance.now() - t0);
    window.lensReady = true;
  }, 0));
});
