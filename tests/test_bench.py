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
    # The LLM is counted on the units it runs (one more per text symbol than text + speech
    # tokens), the flow's token encoder at the token rate: the per-rate count exceeds 6ND's
    # for the LLM and falls under it for the flow.
    llm, flow = out["train"]["llm"], out["train"]["flow"]
    assert llm["mfu"] > llm["mfu_6nd"] and flow["mfu"] < flow["mfu_6nd"]
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
