"""workflow/schemas/params.schema.yaml is the one place for params keys, types and defaults:
each config dataclass's fields and defaults are its schema's, the CLI fills the defaults in
as it validates, and the workflow's own fallbacks (Snakemake validates without filling) are
the schema's."""

import ast
import dataclasses
import json
import re

import pytest
import yaml

from e2etts.config import (
    NO_DEFAULTS,
    REPO_ROOT,
    SCHEMA_PATH,
    build,
    load_params,
    load_yaml,
    validate,
)
from e2etts.errors import ConfigError
from e2etts.flow.model import FlowMatchingConfig
from e2etts.joint.e1 import JointE1Config
from e2etts.joint.e2 import JointE2Config
from e2etts.llm.model import TextToTokenLMConfig
from e2etts.reward.model import RewardModelConfig
from e2etts.reward.train import RewardObjective
from e2etts.synthesis import SynthesisConfig
from e2etts.tokenizer.model import SpeechTokenizerConfig
from e2etts.train import TrainConfig
from e2etts.vocoder.vocos import VocosConfig

# dataclass -> (the schema objects holding its fields, the fields the code sets, not params)
DATACLASSES = {
    SpeechTokenizerConfig: (["$defs/tokenizer_model"], {"text_vocab_size"}),
    TextToTokenLMConfig: (["$defs/llm_model"], {"text_vocab_size", "fsq_levels", "text_frontend"}),
    FlowMatchingConfig: (["$defs/flow_model"], {"fsq_dim"}),
    RewardModelConfig: (["$defs/reward_model"], {"fsq_dim", "text_vocab_size", "n_speakers"}),
    VocosConfig: (["$defs/vocos_model"], set()),
    RewardObjective: (["$defs/reward_objective"], set()),
    JointE1Config: (["$defs/joint_e1_objective"], set()),
    JointE2Config: (["$defs/joint_e2_objective"], set()),
    TrainConfig: (["$defs/train"], {"snapshot_every"}),  # set from curves.every_steps
    SynthesisConfig: (["properties/synthesis", "properties/synthesis_checks"], set()),
}
# params path -> the dataclass built from it (the sections that $ref the defs above)
SECTIONS = {
    ("tokenizer", "model"): SpeechTokenizerConfig,
    ("llm", "model"): TextToTokenLMConfig,
    ("flow", "model"): FlowMatchingConfig,
    ("reward", "model"): RewardModelConfig,
    ("vocoder", "model"): VocosConfig,
    ("reward", "objective"): RewardObjective,
    ("joint_e1", "objective"): JointE1Config,
    ("joint_e2_fm", "objective"): JointE2Config,
    ("joint_e2_full", "objective"): JointE2Config,
    **{(s, "train"): TrainConfig for s in ("tokenizer", "llm", "flow", "vocoder", "reward", "joint_e1",
                                           "stage2_llm", "stage2_flow", "joint_e2_fm", "joint_e2_full",
                                           "cascade_matched")},
}
MODELS = ("tokenizer", "llm", "flow", "reward")  # sections that require `model`
# Optional keys without a default, each because its absence means something.
NO_DEFAULT = {
    "properties/joint_e1/properties/param_groups": "absent: one AdamW group for all of E1",
    "$defs/param_groups/properties/*": "absent module: train.lr and train.warmup_steps",
    "$defs/module_schedule/properties/*": "absent: joint_e1.train's lr and warm-up; no hold",
    "properties/cascade_matched": "absent: no compute-matched control",
}


@pytest.fixture(scope="module")
def schema():
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _at(schema, pointer):
    node = schema
    for part in pointer.split("/"):
        node = node[part]
    return node


def _resolve(schema, node):
    while "$ref" in node:
        node = _at(schema, node["$ref"].removeprefix("#/"))
    return node


def _lists(value):
    return [_lists(v) for v in value] if isinstance(value, (list, tuple)) else value


def _field_defaults(cls):
    return {f.name: _lists(f.default) for f in dataclasses.fields(cls)}


@pytest.mark.parametrize("cls", list(DATACLASSES), ids=lambda c: c.__name__)
def test_schema_properties_are_the_dataclass_fields(schema, cls):
    pointers, set_by_code = DATACLASSES[cls]
    props = {k for p in pointers for k in _at(schema, p)["properties"]}
    fields = {f.name for f in dataclasses.fields(cls)}
    assert props == fields - set_by_code, f"missing: {fields - set_by_code - props}, extra: {props - fields}"
    for p in pointers:
        assert _at(schema, p)["additionalProperties"] is False, p


@pytest.mark.parametrize("cls", list(DATACLASSES), ids=lambda c: c.__name__)
def test_schema_defaults_are_the_dataclass_defaults(schema, cls):
    pointers, _ = DATACLASSES[cls]
    defaults = _field_defaults(cls)
    for p in pointers:
        for key, prop in _at(schema, p)["properties"].items():
            assert "default" in prop, f"{p}/{key}: no default"
            value = prop["default"]
            assert value == defaults[key] and type(value) is type(defaults[key]) or (
                isinstance(value, list) and value == defaults[key]), (
                f"{p}/{key}: schema {value!r}, {cls.__name__} {defaults[key]!r}")


@pytest.mark.parametrize("path", list(SECTIONS), ids=".".join)
def test_an_empty_section_validates_to_the_dataclass_defaults(schema, path):
    """The sections reach their $defs, and filling goes through $ref: an empty section builds
    the dataclass's defaults."""
    section, key = path
    cls = SECTIONS[path]
    given = {"type": "vocos"} if section == "vocoder" else {"model": {}} if section in MODELS else {}
    params = validate({section: {**given, "train": {}, key: {}}}, partial=True)  # the required keys
    built = build(cls, params[section][key], ".".join(path))
    set_by_code = DATACLASSES[cls][1]
    assert {k: v for k, v in dataclasses.asdict(built).items() if k not in set_by_code} == {
        k: v for k, v in dataclasses.asdict(cls()).items() if k not in set_by_code}
    assert set(params[section][key]) == {f.name for f in dataclasses.fields(cls)} - set_by_code


def _optional_without_default(node, where, out):
    """Optional properties without a default under node (a $ref'd def is walked as itself)."""
    if "$ref" in node or node.get(NO_DEFAULTS):
        return
    required = set(node.get("required", ()))
    for key, prop in node.get("properties", {}).items():
        here = f"{where}properties/{key}"
        if key not in required and "default" not in prop:
            out.add(here)
        _optional_without_default(prop, f"{here}/", out)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        _optional_without_default(extra, f"{where}additionalProperties/", out)


def test_every_optional_key_has_a_default_or_a_reason(schema):
    found: set[str] = set()
    _optional_without_default(schema, "", found)
    for d, node in schema["$defs"].items():
        _optional_without_default(node, f"$defs/{d}/", found)

    def matches(pattern, path):
        return re.fullmatch(re.escape(pattern).replace(r"\*", "[^/]+"), path)

    def excused(path):
        return any(matches(p, path) for p in NO_DEFAULT)

    assert not {f for f in found if not excused(f)}
    # And every listed reason still names a key (no stale entries).
    for p in NO_DEFAULT:
        assert any(matches(p, f) for f in found), p


def test_the_cli_fills_a_default_into_a_params_json(schema):
    """A rule's params JSON without llm.model.dropout: the CLI reads the schema's value."""
    params = load_yaml(REPO_ROOT / "params.yaml")
    del params["llm"]["model"]["dropout"]
    filled = load_params(json.dumps({"seed": 1, "llm": params["llm"]}))
    assert filled["llm"]["model"]["dropout"] == schema["$defs"]["llm_model"]["properties"]["dropout"]["default"]
    assert filled["llm"]["model"]["alignment"] == params["llm"]["model"]["alignment"]  # a given key wins
    assert filled["llm"]["train"]["beta2"] == TrainConfig.beta2  # an absent one of the train def
    validate({"llm": params["llm"]}, partial=True)
    assert "dropout" not in params["llm"]["model"] and "beta2" not in params["llm"]["train"]  # input unchanged


@pytest.mark.parametrize("where", [("llm", "model"), ("joint_e1", "objective"), ("stage2_llm",)])
def test_the_cli_still_rejects_an_unknown_key_naming_it(where):
    params = load_yaml(REPO_ROOT / "params.yaml")
    section = params
    for key in where:
        section = section[key]
    section["dropuot"] = 0.1
    with pytest.raises(ConfigError, match=rf"unknown key {re.escape('.'.join(where))}\.dropuot \(allowed here: .*"):
        load_params(json.dumps({k: params[k] for k in ("seed", where[0])}))


def test_design_overrides_are_validated_but_never_filled(tmp_path):
    """e1_designs entries override joint_e1 (x-no-defaults): a filled default would replace
    joint_e1's value, so absent keys stay absent; unknown keys are still refused."""
    params = load_params(REPO_ROOT / "params.yaml", [REPO_ROOT / "config/ablation_e1.yaml"])
    assert params["e1_designs"]["designs"]["rm_fm"] == {"objective": {"ntp_weight": 0.0}}
    assert params["joint_e1"]["objective"]["ntp_target"] == "hard"  # filled outside the designs
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"e1_designs": {"designs": {"x": {"objective": {"ntp_wieght": 0.0}}}}}))
    with pytest.raises(ConfigError, match=r"unknown key e1_designs\.designs\.x\.objective\.ntp_wieght"):
        load_params(REPO_ROOT / "params.yaml", [bad])


def test_snakemake_validates_without_filling():
    text = (REPO_ROOT / "Snakefile").read_text()
    calls = re.findall(r"^validate\((.*)\)$", text, flags=re.M)
    assert calls == ['config, "workflow/schemas/params.schema.yaml", set_default=False']


def _workflow_fallbacks():
    """`config["a"]["b"].get("c", default)` chains in the workflow: (path, default) each."""
    texts = [(REPO_ROOT / "Snakefile").read_text()]
    texts += [p.read_text() for p in sorted((REPO_ROOT / "workflow" / "rules").glob("*.smk"))]
    out = []
    for text in texts:
        for m in re.finditer(r'config((?:\["\w+"\])+)((?:\.get\("\w+", [^()]*\))+)', text):
            path = re.findall(r'\["(\w+)"\]', m.group(1))
            for key, default in re.findall(r'\.get\("(\w+)", ([^()]*)\)', m.group(2)):
                path = [*path, key]
                out.append((tuple(path), ast.literal_eval(default)))
    return out


def test_the_workflows_own_fallbacks_are_the_schema_defaults(schema):
    """Snakemake's config is not filled, so the rules that read an optional key keep a
    fallback; it must be the schema's default."""
    fallbacks = _workflow_fallbacks()
    assert len(fallbacks) >= 6, fallbacks  # alignment, text_frontend, speaker_check_utts, ...
    for path, default in fallbacks:
        node = schema
        for key in path:
            node = _resolve(schema, node)["properties"][key]
        assert "default" in node and node["default"] == default, (path, default, node.get("default"))


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO_ROOT / "config").glob("*.yaml")))
def test_every_committed_configfile_validates(name):
    """Each `--configfile` the docs name merges over params.yaml and passes the schema: a
    design config with a misspelt key fails here, not an hour into a run."""
    params = load_params(REPO_ROOT / "params.yaml", [REPO_ROOT / "config" / name])
    own = yaml.safe_load((REPO_ROOT / "config" / name).read_text())
    assert own and set(own) <= set(params)


def test_the_ctc_anchor_designs_drop_the_tokenizer_head_only():
    """config/e1_ctc_anchor.yaml: both designs turn the tokenizer's CTC head off (the paper's
    three losses); only fm_led changes another weight, and today's E1 keeps its head."""
    params = load_params(REPO_ROOT / "params.yaml", [REPO_ROOT / "config/e1_ctc_anchor.yaml"])
    designs = params["e1_designs"]["designs"]
    assert designs["paper"] == {"objective": {"tokenizer_ctc_weight": 0.0}}
    assert designs["fm_led"]["objective"] == {"tokenizer_ctc_weight": 0.0, "rm_weight": 0.3}
    assert params["joint_e1"]["objective"]["tokenizer_ctc_weight"] == 1.0


def test_the_anchor_fade_designs_fade_the_tokenizer_head_only():
    """config/e1_anchor_fade.yaml: both designs keep today's weights and fade the tokenizer's
    CTC head out by step 350 of E1's 400; fade_pg adds the `pg` schedules, nothing else."""
    params = load_params(REPO_ROOT / "params.yaml", [REPO_ROOT / "config/e1_anchor_fade.yaml"])
    designs = params["e1_designs"]["designs"]
    fade = {"tokenizer_ctc_fade_start": 200, "tokenizer_ctc_fade_steps": 150}
    assert designs["fade"] == {"objective": fade}
    assert designs["fade_pg"]["objective"] == fade and set(designs["fade_pg"]) == {"objective", "param_groups"}
    pg = load_params(REPO_ROOT / "params.yaml", [REPO_ROOT / "config/e1_designs.yaml"])["e1_designs"]["designs"]["pg"]
    assert designs["fade_pg"]["param_groups"] == pg["param_groups"]
    steps = params["joint_e1"]["train"]["max_steps"]
    assert fade["tokenizer_ctc_fade_start"] + fade["tokenizer_ctc_fade_steps"] < steps
    assert params["joint_e1"]["objective"]["tokenizer_ctc_fade_steps"] == 0  # today's E1 keeps its anchor


def test_the_reward_weight_designs_are_fade_pg_with_a_lower_reward_weight_only():
    """config/e1_rm_weight.yaml: every design is config/e1_anchor_fade.yaml's fade_pg, and the
    ones named for a weight differ from it in rm_weight alone, below today's."""
    params = load_params(REPO_ROOT / "params.yaml", [REPO_ROOT / "config/e1_rm_weight.yaml"])
    designs = params["e1_designs"]["designs"]
    fade_pg = load_params(REPO_ROOT / "params.yaml",
                          [REPO_ROOT / "config/e1_anchor_fade.yaml"])["e1_designs"]["designs"]["fade_pg"]
    lowered = {name: d for name, d in designs.items() if name != "fade_pg"}
    assert set(lowered) == {"fade_pg_rm02", "fade_pg_rm005"}
    default_rm = params["joint_e1"]["objective"]["rm_weight"]
    for name, design in lowered.items():
        objective = dict(design["objective"])
        weight = objective.pop("rm_weight")
        assert weight < default_rm and name.endswith(str(weight).replace(".", ""))
        assert objective == fade_pg["objective"] and design["param_groups"] == fade_pg["param_groups"]


def test_heads_first_designs_differ_from_their_weak_anchors_in_the_hold_alone():
    """config/e1_heads_first.yaml: two weak constant anchors on fade_pg's learning rates, and
    the weaker one again with the tokenizer held at lr 0 for 200 steps; nothing else differs."""
    designs = load_params(REPO_ROOT / "params.yaml",
                          [REPO_ROOT / "config/e1_heads_first.yaml"])["e1_designs"]["designs"]
    fade_pg = load_params(REPO_ROOT / "params.yaml",
                          [REPO_ROOT / "config/e1_anchor_fade.yaml"])["e1_designs"]["designs"]["fade_pg"]
    assert set(designs) == {"pg_anchor03_rm02", "pg_anchor01_rm02", "hold200_anchor01_rm02"}
    for anchor in ("03", "01"):
        weak = designs[f"pg_anchor{anchor}_rm02"]
        assert weak["objective"] == {"tokenizer_ctc_weight": int(anchor) / 10, "rm_weight": 0.2}
        assert weak["param_groups"] == fade_pg["param_groups"] and "hold_steps" not in weak["param_groups"]["tokenizer"]
    weak, held = designs["pg_anchor01_rm02"], designs["hold200_anchor01_rm02"]
    assert held["objective"] == weak["objective"]
    groups = {k: dict(v) for k, v in held["param_groups"].items()}
    assert groups["tokenizer"].pop("hold_steps") == 200
    assert groups == weak["param_groups"]
