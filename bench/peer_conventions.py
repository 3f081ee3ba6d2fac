"""What six PyTorch FLOP/MAC counters print for batched and N-d layers: the fixture behind jaxcost.conventions.

Needs its own environment (not jaxcost's):
    python -m venv peers && peers/bin/pip install torch==2.13.0 fvcore thop ptflops torchinfo calflops transformers
    peers/bin/python bench/peer_conventions.py tests/fixtures/peer_conventions.json
Every tool gets a freshly built module and input; tests/test_conventions.py checks jaxcost against the file.
"""
import contextlib
import io
import json
import sys
import traceback
import warnings
from importlib.metadata import version

import torch
import torch.nn as nn

warnings.filterwarnings("ignore")
torch.manual_seed(0)

OUT = sys.argv[1] if len(sys.argv) > 1 else "peer_conventions.json"

BATTERY = [
    # id, module description, constructor(bias), input shape
    ("L1", "Linear(64,32)", lambda b: nn.Linear(64, 32, bias=b), [8, 64]),
    ("L2", "Linear(64,32)", lambda b: nn.Linear(64, 32, bias=b), [4, 5, 64]),
    ("L3", "Linear(64,32)", lambda b: nn.Linear(64, 32, bias=b), [2, 3, 4, 64]),
    ("L4", "Linear(64,32)", lambda b: nn.Linear(64, 32, bias=b), [1, 64]),
    ("L5", "Linear(64,32)", lambda b: nn.Linear(64, 32, bias=b), [64]),
    ("C1", "Conv2d(16,32,3,stride=1,padding=1)",
     lambda b: nn.Conv2d(16, 32, 3, stride=1, padding=1, bias=b), [2, 16, 10, 10]),
    ("C2", "Conv2d(16,32,3,stride=2,padding=1,groups=4)",
     lambda b: nn.Conv2d(16, 32, 3, stride=2, padding=1, groups=4, bias=b), [3, 16, 11, 9]),
    ("C3", "Conv2d(16,16,3,padding=1,groups=16)",
     lambda b: nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=b), [2, 16, 8, 8]),
    ("C4", "Conv2d(16,32,3,padding=0,dilation=2)",
     lambda b: nn.Conv2d(16, 32, 3, padding=0, dilation=2, bias=b), [2, 16, 12, 12]),
    ("C5", "Conv1d(8,12,5,padding=2)",
     lambda b: nn.Conv1d(8, 12, 5, padding=2, bias=b), [3, 8, 20]),
    ("C6", "Conv3d(4,8,3,padding=1)",
     lambda b: nn.Conv3d(4, 8, 3, padding=1, bias=b), [2, 4, 5, 6, 7]),
    ("C7", "Conv2d(16,32,1)", lambda b: nn.Conv2d(16, 32, 1, bias=b), [4, 16, 7, 7]),
]


# ---------------------------------------------------------------- tools
def t_fvcore(m, x):
    from fvcore.nn import FlopCountAnalysis
    a = FlopCountAnalysis(m, (x,))
    a.unsupported_ops_warnings(False)
    a.uncalled_modules_warnings(False)
    return [("fvcore", a.total(), "flops (fvcore: 1 fused multiply-add = 1 flop)")]


def t_thop(m, x):
    import thop
    macs, _params = thop.profile(m, inputs=(x,), verbose=False)
    return [("thop", macs, "macs")]


def _ptflops(backend):
    def f(m, x):
        from ptflops import get_model_complexity_info
        macs, _params = get_model_complexity_info(
            m, tuple(x.shape), as_strings=False, print_per_layer_stat=False,
            input_constructor=lambda _res: x, backend=backend, verbose=False)
        if macs is None:
            raise RuntimeError("ptflops returned None (internal exception)")
        return [(f"ptflops-{backend}", macs, "macs")]
    return f


def t_torchinfo(m, x):
    from torchinfo import summary
    s = summary(m, input_data=x, verbose=0)
    return [("torchinfo", s.total_mult_adds, "mult-adds")]


def t_torch(m, x):
    from torch.utils.flop_counter import FlopCounterMode
    fc = FlopCounterMode(display=False)
    with fc:
        m(x)
    return [("torch", fc.get_total_flops(), "flops (2 per MAC)")]


def t_calflops(m, x):
    from calflops import calculate_flops
    flops, macs, _params = calculate_flops(
        model=m, args=[x], output_as_string=False, print_results=False)
    return [("calflops-flops", flops, "flops"), ("calflops-macs", macs, "macs")]


TOOLS = [
    ("fvcore", "fvcore", t_fvcore),
    ("thop", "thop", t_thop),
    ("ptflops-pytorch", "ptflops", _ptflops("pytorch")),
    ("ptflops-aten", "ptflops", _ptflops("aten")),
    ("torchinfo", "torchinfo", t_torchinfo),
    ("torch", "torch", t_torch),
    ("calflops", "calflops", t_calflops),
]


def tool_version(pkg):
    v = version(pkg)
    if pkg == "thop":
        import thop  # thop/__init__ exports __version__ as a str
        v = f"{v} (thop.__version__={thop.__version__})"
    return v


def to_int(v):
    """Tools return int, float, numpy, or 1-elem tensors. Keep exact value."""
    if isinstance(v, torch.Tensor):
        v = v.item()
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float):
        if v.is_integer():
            return int(v), None
        return int(v), repr(v)  # truncated; raw float kept in note
    return int(v), None


def main():
    records = []
    for lid, desc, ctor, shape in BATTERY:
        for bias in (True, False):
            for tname, pkg, fn in TOOLS:
                torch.manual_seed(0)
                m = ctor(bias).eval()
                x = torch.randn(*shape)
                rec_base = {"layer": lid, "bias": bias, "module": desc,
                            "input_shape": shape, "tool_version": tool_version(pkg)}
                buf = io.StringIO()
                try:
                    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
                        results = fn(m, x)
                    for name, val, label in results:
                        iv, raw = to_int(val)
                        r = dict(rec_base, tool=name, value=iv, label=label)
                        if raw is not None:
                            r["raw_value"] = raw
                            r["note"] = "tool returned a non-integer float; value is int() of it"
                        records.append(r)
                except Exception as e:  # tool refused this input
                    names = ["calflops-flops", "calflops-macs"] if tname == "calflops" else [tname]
                    for name in names:
                        records.append(dict(rec_base, tool=name, value=None, label=None,
                                            error=f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"))
                    log = buf.getvalue()
                    if log:
                        print(f"[{lid} bias={bias} {tname}] captured output:\n{log[-800:]}",
                              file=sys.stderr)
                    traceback.print_exc(limit=2)
    with open(OUT, "w") as f:
        json.dump(records, f, indent=1)

    # compact table
    tools = []
    for r in records:
        if r["tool"] not in tools:
            tools.append(r["tool"])
    print("layer bias " + " ".join(f"{t:>15}" for t in tools))
    for lid, _d, _c, _shape in BATTERY:
        for bias in (True, False):
            row = {r["tool"]: r for r in records if r["layer"] == lid and r["bias"] == bias}
            cells = []
            for t in tools:
                r = row[t]
                cells.append(f"{'ERR' if r['value'] is None else r['value']:>15}")
            print(f"{lid:5} {str(bias):5} " + " ".join(cells))
    print("versions:", {p: tool_version(p) for _t, p, _f in TOOLS})


if __name__ == "__main__":
    main()
