"""PyTorch eager peer for `kiln bench` (protocol: bench/peers/protocol.ts).

Builds the layer list of bench/peers/models.json as an nn.Sequential (PyTorch's own layers and
default initialisation), trains it with the sample's optimizer, and times each step (zero_grad,
forward, cross-entropy, backward, step, loss.item()). Options: threads (torch.set_num_threads),
channelsLast (model and input in torch.channels_last, which routes convolutions to oneDNN's NHWC
kernels), openblas (nothing to do here: the bench points LD_LIBRARY_PATH at OpenBLAS's
libblas.so.3, and this reports which BLAS got loaded).
Run with Debian's /usr/bin/python3, which has python3-torch.
"""
import json
import sys
import time


def progress(text):
    sys.stderr.write(f"progress: {text}\n")
    sys.stderr.flush()


def time_loop(warmup, steps, seconds, what, fn):
    first = None
    times = []
    start = time.perf_counter()
    warmed_at = None
    i = 0
    while True:
        # As kiln bench warms kiln: `warmup` calls and at least a second.
        elapsed = time.perf_counter() - start
        if warmed_at is None and i >= warmup and (warmup == 0 or elapsed >= min(1, seconds / 4)):
            warmed_at = elapsed
        measuring = warmed_at is not None
        if measuring and (len(times) >= steps or (times and elapsed - warmed_at > seconds)):
            break
        progress(f"{what} {len(times) + 1}/{steps}" if measuring else f"{what} warm-up {i + 1}")
        t = time.perf_counter()
        fn(i)
        dt = time.perf_counter() - t
        if i == 0:
            first = dt
        if measuring:
            times.append(dt)
        i += 1
    return first, times


def loaded_blas():
    """Which BLAS the process mapped: OpenBLAS's own library, else the libblas.so.3 it found."""
    try:
        with open("/proc/self/maps") as f:
            libs = sorted({line.split()[-1].rsplit("/", 1)[-1] for line in f if "blas" in line})
    except OSError:
        return "unknown"
    openblas = [l for l in libs if l.startswith("libopenblas")]
    if openblas:
        return f"OpenBLAS ({openblas[0]})"
    return f"reference BLAS ({libs[0]})" if libs else "none"


def build(nn, layers):
    mods = []
    for l in layers:
        op = l["op"]
        if op == "conv2d":
            mods.append(nn.Conv2d(l["in"], l["out"], l["kernel"], stride=l.get("stride", 1), padding=l["padding"], bias=l.get("bias", True)))
        elif op == "batchNorm":
            two_d = l["dims"] == 2 if "dims" in l else mods and any(isinstance(m, nn.Conv2d) for m in mods) and not any(isinstance(m, nn.Flatten) for m in mods)
            mods.append(nn.BatchNorm2d(l["features"]) if two_d else nn.BatchNorm1d(l["features"]))
        elif op == "relu":
            mods.append(nn.ReLU())
        elif op == "maxPool2d":
            mods.append(nn.MaxPool2d(l["kernel"]))
        elif op == "avgPool2d":
            mods.append(nn.AvgPool2d(l["kernel"]))
        elif op == "adaptiveAvgPool2d":
            mods.append(nn.AdaptiveAvgPool2d(l["output"]))
        elif op == "flatten":
            mods.append(nn.Flatten())
        elif op == "linear":
            mods.append(nn.Linear(l["in"], l["out"]))
        elif op == "dropout":
            mods.append(nn.Dropout(l["p"]))
        elif op == "residual":
            mods.append(residual(nn, build(nn, l["body"]), build(nn, l["shortcut"])))
        else:
            raise ValueError(f"unknown layer {op}")
    return nn.Sequential(*mods)


def gpt(spec):
    """samples/gpt.ts in PyTorch: the GPT of the parity fixture (test/fixtures/pytorch/make_gpt_fixture.py),
    one definition for both, checked against the sizes models.json gives."""
    import os
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test", "fixtures", "pytorch"))
    import make_gpt_fixture as g

    want = {"vocab": g.VOCAB, "width": g.WIDTH, "heads": g.HEADS, "layers": g.LAYERS, "context": g.CONTEXT}
    got = {k: spec[k] for k in want}
    if got != want:
        raise ValueError(f"the GPT of models.json {got} is not the fixture's {want}")
    return g.GPT(dropout=spec["dropout"])


def residual(nn, body, shortcut):
    """body(x) + shortcut(x); an empty shortcut Sequential is the identity."""

    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = body
            self.shortcut = shortcut

        def forward(self, x):
            return self.body(x) + self.shortcut(x)

    return Residual()


def run(job):
    import numpy as np
    import torch
    from torch import nn

    opts = job["options"]
    torch.set_num_threads(int(opts.get("threads", 1)))
    torch.manual_seed(0)
    t0 = time.perf_counter()
    text = job.get("text", False)
    model = gpt(job["layers"][0]) if text else build(nn, job["layers"])
    o = job["optimizer"]
    if o["type"] == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=o["lr"], momentum=o["momentum"], nesterov=o["nesterov"], weight_decay=o["weightDecay"])
    elif o["type"] == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=o["lr"], betas=tuple(o["betas"]), eps=o["eps"], weight_decay=o["weightDecay"])
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=o["lr"], betas=tuple(o["betas"]), eps=o["eps"], weight_decay=o["weightDecay"])
    shape = [job["batchSize"], *job["input"]]
    x = torch.from_numpy(np.fromfile(job["data"]["x"], dtype="<f4").reshape(shape))
    y = torch.from_numpy(np.fromfile(job["data"]["y"], dtype="<f4")).long()
    xi = torch.from_numpy(np.fromfile(job["data"]["xi"], dtype="<f4").reshape([job["inferBatch"], *job["input"]]))
    if text:
        # Byte ids: windows [B, T] and their next bytes [B·T]; inference generates from one window.
        x, xi = x.long(), xi.long()
    if opts.get("channelsLast"):
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
        xi = xi.contiguous(memory_format=torch.channels_last)
    loss_fn = nn.CrossEntropyLoss()
    setup = time.perf_counter() - t0

    model.train()

    def step(_):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        loss.item()

    first, train = time_loop(job["warmup"], job["steps"], job["seconds"], "training step", step)
    model.eval()

    def infer(_):
        with torch.inference_mode():
            # A language model's inference is a generation step: the next byte after the window.
            (model(xi)[-1].argmax() if text else model(xi).sum()).item()

    _, inf = time_loop(1, min(job["steps"], 10), job["seconds"] / 2, "inference batch", infer)
    notes = []
    if opts.get("openblas"):
        notes.append(f"BLAS loaded: {loaded_blas()}")
    out = {
        "threads": torch.get_num_threads(),
        "setupSeconds": setup,
        "firstStepSeconds": first,
        "trainSeconds": train,
        "inferSeconds": inf,
        "paramCount": sum(p.numel() for p in model.parameters()),
        "version": torch.__version__,
    }
    if notes:
        out["note"] = "; ".join(notes)
    return out


def main():
    try:
        out = run(json.loads(sys.argv[1]))
    except Exception as e:  # one row says why; the bench goes on
        out = {"error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
    sys.stdout.write("\n" + json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
