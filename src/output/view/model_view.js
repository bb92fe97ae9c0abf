// Model view: one thumbnail per captured layer x head, from the mean-pooled uint8 thumbnails that are
// always inline (at most 32 x 32 cells each). Clicking a thumbnail opens that layer and head in the head
// view. Built on first display, so the page opens fast even with 32 x 32 heads.
'use strict';

Lens.modelView = {
  built: false,

  build(meta) {
    if (this.built) return;
    this.built = true;
    const S = meta.thumb_size, H = meta.n_head, thumbs = Lens.decodeBase64(meta.thumbs);
    const grid = Lens.el('model-grid');
    grid.style.gridTemplateColumns = `auto repeat(${H}, 42px)`;
    const frag = document.createDocumentFragment();
    const label = (text) => {
      const div = document.createElement('div');
      div.className = 'label';
      div.textContent = text;
      frag.appendChild(div);
    };
    label('layer \\ head');
    for (let h = 0; h < H; h++) label(String(h));
    meta.layers.forEach((layer, li) => {
      label(String(layer));
      for (let h = 0; h < H; h++) {
        const canvas = document.createElement('canvas');
        canvas.dataset.layer = String(layer);
        canvas.dataset.head = String(h);
        canvas.title = `layer ${layer}, head ${h}`;
        const base = (li * H + h) * S * S;
        Lens.paintCanvas(canvas, S, S, (r, c) => Lens.blue(thumbs[base + r * S + c] / 255));
        frag.appendChild(canvas);
      }
    });
    grid.appendChild(frag);
    grid.addEventListener('click', (ev) => {
      const c = ev.target.closest('canvas');
      if (!c) return;
      Lens.showView('head');
      Lens.headView.show(+c.dataset.layer, [+c.dataset.head]);
    });
  },
};
