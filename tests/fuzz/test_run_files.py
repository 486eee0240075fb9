"""Fuzz run.json, the settings file a resume trusts: only cnnlab errors may come out.

A crafted run.json once ended 38 of 48 resumes in tracebacks. Here hypothesis writes
random JSON documents, valid run files with one field replaced by random JSON, and
random bytes, and reads each back as ``cnnlab train --resume`` does (``read_info``,
then the merge with what the user asked for).
"""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from cnnlab.errors import CnnlabError
from cnnlab.runs import RunInfo, merge_resume_settings, open_run

VALID = RunInfo(
    model="lecture",
    data="digits",
    settings={"epochs": 3, "batch_size": 32, "lr": 0.002, "optimizer": "adam",
              "schedule": "cosine", "augment": "shift=2,rotate=10", "seed": 0},
    command="cnnlab train --epochs 3",
).to_json()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
fields = st.sampled_from(["format", "version", "model", "data", "settings", "command"])
settings_keys = st.sampled_from([*VALID["settings"], "threads", "clip_norm", "unknown"])


def _read(tmp_path, text: bytes):
    (tmp_path / "run.json").write_bytes(text)
    try:
        info = open_run(tmp_path).read_info()
        merge_resume_settings(info.settings, {"epochs": 5, "lr": 0.1})
    except CnnlabError:
        pass


@given(document=json_values)
def test_random_json_documents_raise_only_cnnlab_errors(tmp_path, document):
    _read(tmp_path, json.dumps(document).encode())


@given(field=fields, value=json_values)
def test_one_field_replaced_raises_only_cnnlab_errors(tmp_path, field, value):
    _read(tmp_path, json.dumps({**VALID, field: value}).encode())


@given(key=settings_keys, value=json_values)
def test_one_setting_replaced_raises_only_cnnlab_errors(tmp_path, key, value):
    document = {**VALID, "settings": {**VALID["settings"], key: value}}
    _read(tmp_path, json.dumps(document).encode())


@given(data=st.binary(max_size=200))
def test_random_bytes_raise_only_cnnlab_errors(tmp_path, data):
    _read(tmp_path, data)


def test_the_valid_run_file_reads_back(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps(VALID))
    assert open_run(tmp_path).read_info().settings == VALID["settings"]
