"""A Tasks API task's default is checked against its own parameter when the task is
declared, as a `@job`'s is (docs/writing-jobs.md): a mistake found at import, not a
parameter that quietly takes any JSON value."""

import importlib
import sys

import pytest

from apps.jobs.catalog import get_job

MODULES = {
    "tests.djtasks.bad_default_range": "default 5.0 is more than the maximum 1",
    "tests.djtasks.bad_default_nan": "default nan is not a finite number",
}


@pytest.mark.parametrize(("module", "message"), MODULES.items())
def test_a_task_whose_default_its_parameter_refuses_does_not_import(module, message):
    for _attempt in range(2):  # and importing it again fails again
        sys.modules.pop(module, None)
        with pytest.raises(TypeError, match=f"parameter 'ratio': {message}"):
            importlib.import_module(module)


def test_a_task_with_an_annotation_the_catalog_cannot_type_still_takes_json():
    job = get_job("apps.demo.tasks_api.tasks.tally")
    assert all(p.kind.__name__.startswith("JSON") for p in job.params), job.params
