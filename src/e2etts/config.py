"""params.yaml: loading, schema validation, and building component configs.

`params.yaml` is the one source of hyperparameters. Snakemake validates it against
`workflow/schemas/params.schema.yaml` and hands each rule the sections it needs as JSON;
the CLI validates what it receives against the same schema, so a misspelled key or a
wrong type fails fast with a message that names the key, and fills every absent key that
has a schema `default:` (the schema is the one place for keys, types and defaults; code
reads the validated sections without defaults of its own). Snakemake does not fill them
(Snakefile: set_default=False), so the params JSON handed to rules stays what was written.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "params.schema.yaml"


def deep_merge(base: dict, override: dict) -> dict:
    """Recursive dict merge (override wins), the same rule Snakemake uses for --configfile."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


# Schema keyword: below an object marked with it nothing is filled (its keys override another
# section's, so an absent key means "unchanged", not "the default").
NO_DEFAULTS = "x-no-defaults"


def _schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def filling_validator(schema: dict):
    """A Draft 2020-12 validator of `schema` that, as it validates an object, first writes
    each absent property's `default` into it (a deep copy). Recursive: a filled `{}` is then
    validated and filled in turn, and `$ref`'d definitions fill like inline ones; nothing is
    filled below an object marked NO_DEFAULTS."""
    import jsonschema

    base = jsonschema.Draft202012Validator
    plain = base(schema)  # resolves the root's $refs; fills nothing

    def properties(validator, props, instance, subschema):
        if subschema.get(NO_DEFAULTS):
            validator = plain.evolve(schema=subschema)
        elif validator.is_type(instance, "object"):
            for key, prop in props.items():
                if key not in instance and isinstance(prop, dict) and "default" in prop:
                    instance[key] = copy.deepcopy(prop["default"])
        yield from base.VALIDATORS["properties"](validator, props, instance, subschema)

    return jsonschema.validators.extend(base, {"properties": properties})(schema)


def validate(params: dict, source: str = "params.yaml", partial: bool = False) -> dict:
    """Validate params against the JSON schema; raise ConfigError naming the key. Returns a
    copy with every absent key that has a schema default filled in (params is not changed).

    partial=True accepts a subset of the top-level sections (what one rule receives).
    """
    schema = _schema()
    if partial:
        schema = dict(schema)
        schema.pop("required", None)
    params = copy.deepcopy(params)
    validator = filling_validator(schema)
    errors = sorted(validator.iter_errors(params), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        key = ".".join(str(p) for p in err.absolute_path) or "<top level>"
        if err.validator == "additionalProperties":
            allowed = sorted(err.schema.get("properties", {}))
            extra = sorted(set(err.instance) - set(allowed))
            where = f"{key}." if err.absolute_path else ""
            msg = (
                f"{source}: unknown key {', '.join(where + e for e in extra)!s} "
                f"(allowed here: {', '.join(allowed)})"
            )
        else:
            msg = f"{source}: {key}: {err.message}"
        raise ConfigError(msg)
    return params


def load_params(value: str | Path, overrides: list[str | Path] = ()) -> dict:
    """`value` is a YAML path or an inline JSON object (what Snakemake rules pass)."""
    text = str(value)
    if text.lstrip().startswith("{"):
        try:
            params = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--params: not valid JSON ({exc})") from None
        source = "--params"
    else:
        params = load_yaml(text)
        source = text
    for extra in overrides:
        params = deep_merge(params, load_yaml(extra))
    return validate(params, source=source, partial=source == "--params")


def build(cls, section: dict, where: str):
    """Build a dataclass config from a params section; unknown keys name the section."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(section) - names)
    if unknown:
        raise ConfigError(
            f"params.yaml: unknown key {', '.join(f'{where}.{k}' for k in unknown)} "
            f"(allowed: {', '.join(sorted(names))})"
        )
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in section:
            kwargs[f.name] = _tuples(section[f.name])
    return cls(**kwargs)


def _tuples(value):
    """YAML/JSON lists -> tuples, nested too (the dataclasses' sequence defaults are tuples)."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value
