import json

SPLITS = ["train", "dev", "test"]
E2ETTS = "e2etts"


def section_json(*keys):
    """The named params sections as one JSON string (a rule's `params:`)."""
    return json.dumps({k: config[k] for k in keys}, sort_keys=True)
