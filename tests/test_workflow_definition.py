"""The workflow definition and the template it is packaged into: rendering, placeholders, lint."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib.contract import RECORD_FAILED_UNTAKEN, RECORD_QUEUED, JobStatus
from chalicelib.scaling.scaler import PREVIOUS_ANSWER
from infra.stack import DEFAULT_TEMPLATE, StackError, load_template, package_template
from statemachine import RenderError, load_definition, placeholders, render

pytestmark = pytest.mark.control_plane


def test_render_fills_placeholders_and_leaves_paths_alone():
    text = '{"a": "${Table}", "b.$": "$.job_id", "c.$": "$$.Execution.Id", "d": "${Table}-x"}'
    assert json.loads(render(text, {"Table": "jobs"})) == {
        "a": "jobs",
        "b.$": "$.job_id",
        "c.$": "$$.Execution.Id",
        "d": "jobs-x",
    }


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({}, "without values: ['Table']"),
        ({"Table": "t", "Queue": "q"}, "without placeholders: ['Queue']"),
    ],
)
def test_render_refuses_unknown_and_unused_names(values, says):
    with pytest.raises(RenderError, match=says.replace("[", r"\[").replace("]", r"\]")):
        render("${Table}", values)


def test_the_definition_and_the_template_agree_on_placeholders():
    workflow = load_template()["Resources"]["JobWorkflow"]
    assert placeholders(load_definition()) == set(workflow["Properties"]["DefinitionSubstitutions"])


def test_every_state_is_reachable_and_every_task_that_can_fail_is_caught():
    definition = json.loads(load_definition())
    states = definition["States"]
    targets = {definition["StartAt"]}
    for state in states.values():
        targets |= {state.get("Next"), state.get("Default")} | {
            c["Next"] for c in state.get("Choices", []) + state.get("Catch", [])
        }
    assert set(states) == targets - {None}
    for name, state in states.items():
        if state["Type"] == "Task" and name != "Record job as failed":
            assert any("States.ALL" in c["ErrorEquals"] for c in state["Catch"]), name
            assert state["Retry"], name


def test_packaging_renders_the_definition_into_a_sub_of_stack_references():
    packaged = package_template(load_template())
    properties = packaged["Resources"]["JobWorkflow"]["Properties"]
    assert "DefinitionSubstitutions" not in properties
    definition = properties["DefinitionString"]["Fn::Sub"]
    assert '"TableName": "${JobsTable}"' in definition
    assert '"QueueUrl": "${JobsQueue}"' in definition
    assert '"FunctionName": "${ScaleUpFunctionArn}"' in definition
    assert json.loads(definition)["StartAt"] == "Record job as queued"


def test_packaging_refuses_substitutions_it_cannot_express():
    template = load_template()
    template["Resources"]["JobWorkflow"]["Properties"]["DefinitionSubstitutions"][
        "JobsTableName"
    ] = {"Fn::Join": ["", ["a"]]}
    with pytest.raises(StackError):
        package_template(template)


def test_the_packaged_template_passes_cfn_lint(tmp_path):
    packaged = tmp_path / "packaged.json"
    packaged.write_text(json.dumps(package_template(load_template())))
    result = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), str(packaged), str(DEFAULT_TEMPLATE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_launch_template_tags_workers_the_way_scale_up_counts_them():
    from chalicelib.contract import STAGE_TAG, WORKER_ROLE_TAG

    data = load_template()["Resources"]["WorkerLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    (instance_tags,) = [
        spec["Tags"] for spec in data["TagSpecifications"] if spec["ResourceType"] == "instance"
    ]
    tags = {tag["Key"]: tag["Value"] for tag in instance_tags}
    assert tags[WORKER_ROLE_TAG[0]] == WORKER_ROLE_TAG[1]
    assert tags[STAGE_TAG] == {"Ref": "StagePrefix"}
    assert data["InstanceInitiatedShutdownBehavior"] == "terminate"


# The workflow's writes to the jobs table, each held to the contract's transition of that name.
_WORKFLOW_TRANSITIONS = {
    "Record job as queued": RECORD_QUEUED,
    "Record job as failed": RECORD_FAILED_UNTAKEN,
}


def test_the_workflow_writes_the_jobs_table_as_the_contract_says():
    states = json.loads(load_definition())["States"]
    writes = {
        name: state["Parameters"]
        for name, state in states.items()
        if state.get("Resource", "").endswith("dynamodb:updateItem")
    }
    assert set(writes) == set(_WORKFLOW_TRANSITIONS)
    for name, parameters in writes.items():
        transition = _WORKFLOW_TRANSITIONS[name]
        assert (parameters["UpdateExpression"], parameters["ConditionExpression"]) == (
            transition.update,
            transition.condition,
        ), name
        assert parameters["ExpressionAttributeNames"] == transition.attribute_names, name
        values = parameters["ExpressionAttributeValues"]
        assert {placeholder: values.get(placeholder) for placeholder in transition.statuses} == {
            placeholder: {"S": status.value} for placeholder, status in transition.statuses.items()
        }, name
        # Every other value comes from the execution (its input, its context), none is a literal.
        assert {p for p in values if p not in transition.statuses} == {
            f":{p}" for p in transition.parameters
        }, name
        assert all(set(values[f":{p}"]) == {"S.$"} for p in transition.parameters), name


def test_every_status_the_workflow_spells_is_one_of_the_contract():
    spelled = set(re.findall(r'"S":\s*"([^"]*)"', load_definition()))
    assert spelled and spelled <= {status.value for status in JobStatus}


def test_the_scale_up_task_finds_its_previous_answer_where_the_workflow_puts_it():
    states = json.loads(load_definition())["States"]
    assert states["Launch workers if needed"]["ResultPath"] == f"$.{PREVIOUS_ANSWER}"
    assert (
        states["Launch workers if needed"]["Parameters"]["Payload.$"] == "$"
    )  # the whole state, answer included
    assert (
        states["Was the backlog counted?"]["Choices"][0]["Variable"]
        == f"$.{PREVIOUS_ANSWER}.covered"
    )
