"""The benchmark script runs and reports every figure it promises (tiny models)."""

import yaml

from e2etts import bench
from e2etts.config import REPO_ROOT, deep_merge, load_yaml


def test_bench_reports_all_figures(tmp_path):
    params = deep_merge(load_yaml(REPO_ROOT / "params.yaml"), load_yaml(REPO_ROOT / "config/smoke.yaml"))
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    out = bench.run(str(path), threads=1, repeat=1, batch=2)
    assert set(out["train"]) == {"tokenizer", "llm", "flow"}
    for stage in out["train"].values():
        assert stage["mel_frames_per_s"] > 0 and 0 < stage["mfu"] and 0 < stage["mfu_6nd"]
        assert stage["step_gflop"] > 0
    syn = out["synthesis_3s"]
    assert syn["kv_cache_speedup"] > 0 and syn["total_rtf_griffinlim"] > 0
    assert out["llm_10s"]["kv_cache_speedup"] > 0 and out["llm_10s"]["llm_kv_cache_rtf"] > 0
    assert out["peak_rss_mb"] > 0


def test_matmul_peak_is_the_fastest_round(monkeypatch):
    """A slow round (another job on the core) must not lower the peak the MFU divides by."""
    import torch

    times = iter([0.04, 0.01, 0.03])
    monkeypatch.setattr(bench, "_timed", lambda fn, repeat: next(times))
    peak = bench.matmul_peak(torch.float32, torch.device("cpu"), n=64, rounds=3)
    assert peak == 2 * 64**3 / 0.01 / 1e9


def test_weight_flops_counts_each_layer_on_the_rows_it_ran_on():
    """2 x in x out per row of a Linear, 2 x (in / groups) x kernel x out per output frame
    of a Conv1d; a layer the forward skips counts nothing."""
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 8)
            self.conv = nn.Conv1d(8, 8, kernel_size=3, padding=1, groups=2)
            self.b = nn.Linear(8, 2)
            self.unused = nn.Linear(8, 100)

        def forward(self, x):  # (B, T, 4)
            h = self.conv(self.a(x).transpose(1, 2)).transpose(1, 2)
            return self.b(h[:, :2])  # the head sees the first 2 of T rows

    net = Net()
    x = torch.randn(3, 5, 4)
    flops = bench.weight_flops(net, lambda: net(x))
    assert flops == 2 * 4 * 8 * 15 + 2 * (8 // 2) * 3 * 8 * 15 + 2 * 8 * 2 * 6
    assert not net.a._forward_hooks  # the counting hooks are gone afterwards
