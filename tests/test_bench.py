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
        assert stage["mel_frames_per_s"] > 0 and 0 < stage["mfu"]
    syn = out["synthesis_3s"]
    assert syn["kv_cache_speedup"] > 0 and syn["total_rtf_griffinlim"] > 0
    assert out["llm_10s"]["kv_cache_speedup"] > 0 and out["llm_10s"]["llm_kv_cache_rtf"] > 0
    assert out["peak_rss_mb"] > 0
