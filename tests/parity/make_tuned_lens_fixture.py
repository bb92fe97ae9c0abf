"""Writes tests/fixtures/tuned-lens-py: a tuned lens for tests/fixtures/tiny-llama saved exactly as the
tuned-lens package's TunedLens.save does (torch.save of an nn.ModuleList of nn.Linear state_dict, an
OrderedDict with _metadata; json.dump of TunedLensConfig's fields), plus reference.json with the
translated residuals h + translator(h) computed by nn.Linear, so the C++ side checks both the file
format and the weight convention (y = h + h @ W^T + b).

Run with Debian's torch:  /usr/bin/python3 tests/parity/make_tuned_lens_fixture.py
Also: --check DIR  reads a lens directory written by `lens train` the way the package loads it
(torch.load + ModuleList.load_state_dict, strict) and prints what it found.
"""
import json
import sys
from pathlib import Path

import torch as th

D, N_LAYER = 32, 3  # tests/fixtures/tiny-llama


def translators(d, n):
    return th.nn.ModuleList([th.nn.Linear(d, d, bias=True) for _ in range(n)])


def make(out: Path):
    out.mkdir(parents=True, exist_ok=True)
    ml = translators(D, N_LAYER)
    with th.no_grad():
        for i, lin in enumerate(ml):
            k = th.arange(D * D, dtype=th.float64).view(D, D)
            # Asymmetric on purpose, so W and W^T give different results.
            lin.weight.copy_(0.02 * th.sin(0.37 * k + i) + 0.01 * (k % 7 == 0))
            lin.bias.copy_(0.1 * th.cos(th.arange(D, dtype=th.float64) + 3 * i))
    th.save(ml.state_dict(), out / "params.pt")
    config = {
        "base_model_name_or_path": "tests/fixtures/tiny-llama",
        "d_model": D,
        "num_hidden_layers": N_LAYER,
        "bias": True,
        "base_model_revision": None,
        "unembed_hash": None,
        "lens_type": "linear_tuned_lens",
    }
    with open(out / "config.json", "w") as f:
        json.dump(config, f)
    g = th.Generator().manual_seed(0)
    h = th.randn(4, D, generator=g)
    ref = {"h": h.tolist(), "translated": []}
    with th.no_grad():
        for lin in ml:
            ref["translated"].append((h + lin(h)).tolist())
    with open(out / "reference.json", "w") as f:
        json.dump(ref, f)
    print(f"wrote {out}")


def check(lens_dir: Path):
    config = json.load(open(lens_dir / "config.json"))
    state = th.load(lens_dir / "params.pt")
    ml = translators(config["d_model"], config["num_hidden_layers"])
    ml.load_state_dict(state)  # strict: exactly the keys {i}.weight, {i}.bias
    print("config:", config)
    print("type:", type(state).__name__, "keys:", list(state.keys()))
    for k, v in state.items():
        print(f"  {k}: {tuple(v.shape)} {v.dtype} norm {v.norm().item():.6g}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        check(Path(sys.argv[2]))
    else:
        make(Path(__file__).resolve().parent.parent / "fixtures" / "tuned-lens-py")
