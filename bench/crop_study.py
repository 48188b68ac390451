"""Study (bench/NOTES.md, "Main job: random crops"): at an equal budget of training pixels, does the tutorial's
denoising autoencoder learn more from random crops of the slices (more, smaller updates) than from whole
slices? PyTorch, float32, 2 threads, the tutorial's RMSprop; validation on the whole noisy validation slices
(sigma 0.03, one fixed draw), PSNR against the clean ones.

    mriae train ... --epochs 1 --out RUN && mriae slices --weights RUN/initial.safetensors --out slices.safetensors
    /usr/bin/python3 bench/crop_study.py slices.safetensors --pixels 67               # whole slices, batch 4
    /usr/bin/python3 bench/crop_study.py slices.safetensors --pixels 67 --patch 64 --batch 8
"""
import sys, time, math, argparse
sys.path.insert(0, __import__("os").path.join(__import__("os").path.dirname(__file__), "..", "python"))
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F
from mriae_compare.safetensors_io import read
ap = argparse.ArgumentParser()
ap.add_argument("slices"); ap.add_argument("--patch", type=int, default=0); ap.add_argument("--batch", type=int, default=4)
ap.add_argument("--pixels", type=float, required=True, help="training pixel budget (millions)")
ap.add_argument("--lr", type=float, default=1e-3); ap.add_argument("--seed", type=int, default=1)
ap.add_argument("--opt", default="rmsprop"); ap.add_argument("--decay", type=float, default=0.0)
ap.add_argument("--evals", type=int, default=5)
a = ap.parse_args()
torch.set_num_threads(2); torch.manual_seed(a.seed); rng = np.random.default_rng(a.seed)
data, meta = read(a.slices)
S = data["slices"].astype(np.float32); tr = [int(i) for i in data["train"]]; va = [int(i) for i in data["validation"]]
N, H, W = S.shape[0], S.shape[-2], S.shape[-1]
S = S.reshape(N, 1, H, W)
ch = [1, 32, 32, 64, 64, 128, 128, 64, 64, 32, 32]
class M(nn.Module):
    def __init__(s):
        super().__init__()
        s.c = nn.ModuleList([nn.Conv2d(ch[i], ch[i+1], 3, padding=1) for i in range(10)])
        s.b = nn.ModuleList([nn.BatchNorm2d(ch[i+1], momentum=0.01, eps=1e-3) for i in range(10)])
        s.o = nn.Conv2d(32, 1, 3, padding=1)
        for m in list(s.c) + [s.o]: nn.init.xavier_uniform_(m.weight); nn.init.zeros_(m.bias)
    def forward(s, x):
        # encoder 32,32 - pool - 64,64 - pool - 128,128; decoder 64,64 - up - 32,32 - up - 1 + sigmoid
        for i in range(10):
            x = s.b[i](F.relu(s.c[i](x)))
            if i in (1, 3): x = F.max_pool2d(x, 2)
            if i in (7, 9): x = F.interpolate(x, scale_factor=2, mode="nearest")
        return torch.sigmoid(s.o(x))
m = M()
opt = torch.optim.RMSprop(m.parameters(), lr=a.lr, alpha=0.9, eps=1e-7) if a.opt == "rmsprop" else torch.optim.Adam(m.parameters(), lr=a.lr)
p = a.patch or H
per_step = a.batch * p * (a.patch or W)
steps = int(a.pixels * 1e6 / per_step)
Xv = torch.tensor(S[va]); g = torch.Generator().manual_seed(99)
Nv = Xv + 0.03 * torch.randn(Xv.shape, generator=g)
def psnr(y, x): return 10 * math.log10(1.0 / float(((y - x) ** 2).mean()))
def evaluate():
    m.eval()
    with torch.no_grad(): r = torch.cat([m(Nv[i:i+8]) for i in range(0, len(va), 8)])
    m.train(); return psnr(r, Xv)
print(f"H={H} W={W} patch={p} batch={a.batch} steps={steps} noisy-input {psnr(Nv, Xv):.2f}", flush=True)
t0 = time.time(); order = []
for s in range(steps):
    if not order: order = list(rng.permutation(tr))
    idx = [order.pop() for _ in range(min(a.batch, len(order) or a.batch))] if not a.patch else list(rng.choice(tr, a.batch))
    x = S[idx]
    if a.patch:
        ys = rng.integers(0, H - p + 1, len(idx)); xs = rng.integers(0, W - p + 1, len(idx))
        x = np.stack([x[i, :, ys[i]:ys[i]+p, xs[i]:xs[i]+p] for i in range(len(idx))])
    x = torch.tensor(x); n = x + 0.03 * torch.randn(x.shape)
    if a.decay: 
        for gr in opt.param_groups: gr["lr"] = a.lr * 0.5 * (1 + math.cos(math.pi * s / steps))
    loss = F.mse_loss(m(n), x); opt.zero_grad(); loss.backward(); opt.step()
    if (s + 1) % max(1, steps // a.evals) == 0 or s == steps - 1:
        print(f"step {s+1} loss {loss.item():.5f} val psnr {evaluate():.2f} t {time.time()-t0:.0f}s", flush=True)
